package bench

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Row is one line of the comparison table: a figure for each design, and
// the ratio of each design's figure to the likes design's where that says
// something.
type Row struct {
	Name   string
	Values []string
}

// Table returns the comparison table of r: one column per design.
func (r *Results) Table() (header []string, rows []Row) {
	header = append(header, "")
	for _, d := range r.Designs {
		header = append(header, string(d.Design))
	}
	ref := -1
	for i, d := range r.Designs {
		if d.Design == DesignLikes && len(r.Designs) > 1 {
			ref = i
		}
	}
	add := func(name string, f func(d DesignResult) string) {
		row := Row{Name: name}
		for _, d := range r.Designs {
			if d.Error != "" {
				row.Values = append(row.Values, "—")
				continue
			}
			row.Values = append(row.Values, f(d))
		}
		rows = append(rows, row)
	}
	// num adds a numeric row; with a ratio to the likes design when asked.
	num := func(name string, ratio bool, f func(d DesignResult) (float64, bool), format func(float64) string) {
		add(name, func(d DesignResult) string {
			v, ok := f(d)
			if !ok {
				return "n/a"
			}
			s := format(v)
			if ratio && ref >= 0 && d.Design != DesignLikes && r.Designs[ref].Error == "" {
				if base, ok := f(r.Designs[ref]); ok && base > 0 && v > 0 {
					s += " (" + formatRatio(v/base) + ")"
				}
			}
			return s
		})
	}
	always := func(g func(d DesignResult) float64) func(d DesignResult) (float64, bool) {
		return func(d DesignResult) (float64, bool) { return g(d), true }
	}
	ms := func(v float64) string { return fmt.Sprintf("%.2f ms", v) }
	rate := func(v float64) string { return formatCount(v) + "/s" }

	num("likes/s achieved", true, always(func(d DesignResult) float64 { return d.LikesPerSec }), rate)
	if r.ReadsPerSec > 0 {
		num("reads/s achieved", true, always(func(d DesignResult) float64 { return d.ReadsPerSec }), rate)
	}
	for _, p := range []struct {
		name string
		f    func(Percentiles) float64
	}{
		{"write p50", func(p Percentiles) float64 { return p.P50 }},
		{"write p90", func(p Percentiles) float64 { return p.P90 }},
		{"write p99", func(p Percentiles) float64 { return p.P99 }},
		{"write p99.9", func(p Percentiles) float64 { return p.P999 }},
		{"write max", func(p Percentiles) float64 { return p.Max }},
	} {
		num(p.name, p.name == "write p99", always(func(d DesignResult) float64 { return p.f(d.Writes.Latency) }), ms)
	}
	if r.ReadsPerSec > 0 {
		for _, p := range []struct {
			name string
			f    func(Percentiles) float64
		}{
			{"read p50", func(p Percentiles) float64 { return p.P50 }},
			{"read p99", func(p Percentiles) float64 { return p.P99 }},
			{"read p99.9", func(p Percentiles) float64 { return p.P999 }},
			{"read max", func(p Percentiles) float64 { return p.Max }},
		} {
			num(p.name, p.name == "read p99", always(func(d DesignResult) float64 { return p.f(d.Reads.Latency) }), ms)
		}
	}
	add("write statuses", func(d DesignResult) string { return formatStatus(d.Writes.Status) })
	if r.ReadsPerSec > 0 {
		add("read statuses", func(d DesignResult) string { return formatStatus(d.Reads.Status) })
	}
	redisRow := func(name string, ratio bool, pick func(d DesignResult) RedisFigures, g func(f RedisFigures, d DesignResult) float64, format func(float64) string) {
		num(name, ratio, func(d DesignResult) (float64, bool) {
			f := pick(d)
			if !d.UsesRedis || !f.known() {
				return 0, false
			}
			return g(f, d), true
		}, format)
	}
	sent := func(d DesignResult) RedisFigures { return d.RedisSent }
	executed := func(d DesignResult) RedisFigures { return d.RedisExecuted }
	// best is what was sent when that was counted, else what was executed.
	best := func(d DesignResult) RedisFigures {
		if d.RedisSent.known() {
			return d.RedisSent
		}
		return d.RedisExecuted
	}
	perLike := func(f RedisFigures, _ DesignResult) float64 { return f.PerLike }
	four := func(v float64) string { return fmt.Sprintf("%.4f", v) }
	redisRow("Redis commands sent / like", true, sent, perLike, four)
	redisRow("Redis commands executed / like", true, executed, perLike, four)
	// The counter writes themselves (INCRBY of the tail; INCR/DECR of a
	// naive counter), per 100 ms: at most K per window per sidecar is the
	// design's promise, whatever the rate.
	redisRow("counter writes / 100 ms", true, best, func(f RedisFigures, d DesignResult) float64 {
		b := f.ByCommand
		return float64(b["incrby"]+b["incr"]+b["decr"]) / (d.Elapsed * 10)
	}, func(v float64) string { return fmt.Sprintf("%.1f", v) })
	redisRow("Redis commands sent/s", true, sent, func(f RedisFigures, _ DesignResult) float64 { return f.PerSec }, rate)
	redisRow("Redis commands executed/s", true, executed, func(f RedisFigures, _ DesignResult) float64 { return f.PerSec }, rate)
	num("log publishes", false, func(d DesignResult) (float64, bool) { return float64(d.LogPublishes), d.LogPublishes > 0 }, formatCount)
	num("events / publish", false, func(d DesignResult) (float64, bool) { return d.EventsPerPublish, d.LogPublishes > 0 }, func(v float64) string { return fmt.Sprintf("%.1f", v) })
	num("DB rows written/s", false, func(d DesignResult) (float64, bool) { return d.DBRowsPerSec, d.DBRows > 0 }, rate)
	add("staleness p50 / p99 / max", func(d DesignResult) string {
		s := d.Staleness
		if s == nil || s.Count == 0 {
			if s != nil && s.Missed > 0 {
				return fmt.Sprintf("none visible (%d missed)", s.Missed)
			}
			return "n/a"
		}
		out := fmt.Sprintf("%.0f / %.0f / %.0f ms", s.P50, s.P99, s.Max)
		if s.Missed > 0 {
			out += fmt.Sprintf(" (%d missed)", s.Missed)
		}
		return out
	})
	add("CPU cores: system / bench process", func(d DesignResult) string {
		sys := "in bench"
		if d.SystemCPU > 0 {
			sys = fmt.Sprintf("%.2f", d.SystemCPU)
		}
		return fmt.Sprintf("%s / %.2f", sys, d.BenchCPU)
	})
	num("max RSS", false, func(d DesignResult) (float64, bool) { return d.MaxRSSMiB, d.MaxRSSMiB > 0 }, func(v float64) string { return fmt.Sprintf("%.0f MiB", v) })
	add("verdict", func(d DesignResult) string { return d.Verdict.Status })
	// Errors are shown whatever the column.
	for i, d := range r.Designs {
		if d.Error != "" {
			rows[len(rows)-1].Values[i] = "FAIL: " + d.Error
		}
	}
	return header, rows
}

func formatRatio(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f×", x)
	case x >= 10:
		return fmt.Sprintf("%.1f×", x)
	}
	return fmt.Sprintf("%.2f×", x)
}

// formatCount prints n with thousands separators.
func formatCount(n float64) string {
	if math.IsNaN(n) || math.IsInf(n, 0) {
		return "n/a"
	}
	neg := n < 0
	s := fmt.Sprintf("%.0f", math.Abs(n))
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func formatStatus(m map[string]int64) string {
	var parts []string
	for _, k := range sortedStatus(m) {
		parts = append(parts, k+":"+formatCount(float64(m[k])))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// WriteText writes the notes, the comparison table and each verdict.
func (r *Results) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "\nlikes bench — scenario %s, %s likes/s offered", r.Scenario, formatCount(r.Rate))
	if r.ReadsPerSec > 0 {
		fmt.Fprintf(w, " + %s reads/s", formatCount(r.ReadsPerSec))
	}
	fmt.Fprintf(w, " for %s, dup ratio %.2f, mode %s\n", r.Duration, r.DupRatio, r.Mode)
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintln(w)
	header, rows := r.Table()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, row := range rows {
		fmt.Fprintln(tw, row.Name+"\t"+strings.Join(row.Values, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, d := range r.Designs {
		fmt.Fprintf(w, "verdict %s: %s — %s\n", d.Design, d.Verdict.Status, d.Verdict.Detail)
	}
	_, err := fmt.Fprintln(w)
	return err
}

// WriteJSON writes r as indented JSON.
func (r *Results) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

//go:embed report.html.tmpl
var reportTemplate string

var reportTmpl = template.Must(template.New("report").Parse(reportTemplate))

// WriteHTML writes a self-contained HTML report: the table, the notes and
// charts (throughput, latency percentiles and Redis commands per second
// over time, per design) drawn as inline SVG by an inline script from the
// embedded JSON results. It loads nothing from the network.
func (r *Results) WriteHTML(w io.Writer) error {
	header, rows := r.Table()
	// html/template writes .R into the script as JSON, escaped for its context.
	return reportTmpl.Execute(w, map[string]any{"R": r, "Header": header, "Rows": rows})
}
