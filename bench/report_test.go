package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sampleResults are the results of an imaginary --compare run.
func sampleResults() *Results {
	series := func(likes, p99, redis float64, n int) []Point {
		var out []Point
		for i := range n {
			out = append(out, Point{T: float64(i + 1), LikesPerSec: likes, WriteP50: p99 / 10, WriteP99: p99, WriteMax: p99 * 2, RedisPerSec: redis})
		}
		return out
	}
	d := func(name Design, likes, p99, perLike float64, verdict string) DesignResult {
		return DesignResult{
			Design: name, Elapsed: 5, LikesPerSec: likes,
			Writes:        KindResult{Definitive: int64(likes * 5), Latency: Percentiles{Count: int64(likes * 5), P50: p99 / 10, P90: p99 / 2, P99: p99, P999: p99 * 1.5, Max: p99 * 2}, Status: map[string]int64{"200": int64(likes * 5), "503": 3}},
			UsesRedis:     true,
			RedisSent:     RedisFigures{Commands: int64(perLike * likes * 5), PerLike: perLike, PerSec: perLike * likes},
			RedisExecuted: RedisFigures{Commands: int64(3 * perLike * likes * 5), PerLike: 3 * perLike, PerSec: 3 * perLike * likes},
			MaxRSSMiB:     80, Verdict: Verdict{Status: verdict, Detail: "detail of " + verdict},
			Series: series(likes, p99, perLike*likes, 5),
		}
	}
	r := &Results{Scenario: Celebrity, Rate: 1000, Duration: "5s", Mode: "embedded", Machine: "test", Notes: []string{"a note with <b>markup</b> & </script>"}}
	nd := d(DesignNaiveDB, 400, 900, 0, VerdictExact)
	nd.UsesRedis, nd.RedisSent, nd.RedisExecuted = false, RedisFigures{}, RedisFigures{}
	r.Designs = []DesignResult{nd, d(DesignNaiveRedis, 1000, 20, 2, VerdictFail), d(DesignLikes, 1000, 10, 0.01, VerdictExact)}
	r.Designs[2].LogPublishes, r.Designs[2].LogEvents, r.Designs[2].EventsPerPublish = 50, 5000, 100
	s := StalenessResult{Percentiles: Percentiles{Count: 10, P50: 300, P99: 900, Max: 1000}}
	r.Designs[2].Staleness = &s
	return r
}

func TestReportText(t *testing.T) {
	r := sampleResults()
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"naive-db", "naive-redis", "likes",
		"400/s (0.40×)",       // likes/s ratio to the likes design
		"900.00 ms (90.0×)",   // write p99 ratio
		"2.0000 (200×)",       // Redis commands per like ratio
		"events / publish",    // the log row
		"300 / 900 / 1000 ms", // staleness
		"verdict naive-redis: FAIL",
		"200:5,000 503:3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
}

func TestReportJSON(t *testing.T) {
	r := sampleResults()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not parse back: %v", err)
	}
	if len(back.Designs) != 3 || back.Designs[2].RedisSent.PerLike != 0.01 || back.Designs[1].Verdict.Status != VerdictFail {
		t.Errorf("got %+v, want the three designs back", back.Designs)
	}
	if !r.Failed() {
		t.Errorf("Failed: got false, want true (naive-redis failed)")
	}
}

func TestReportHTML(t *testing.T) {
	r := sampleResults()
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	t.Run("it is self-contained", func(t *testing.T) {
		if m := regexp.MustCompile(`(?i)(src|href)=["']?(https?:)?//`).FindString(html); m != "" {
			t.Errorf("got a network reference %q, want none", m)
		}
	})
	t.Run("notes are escaped, so the script is not cut short", func(t *testing.T) {
		if strings.Contains(html, "<b>markup</b>") || strings.Count(html, "</script>") != 1 {
			t.Errorf("got unescaped markup in the report")
		}
	})
	t.Run("the table is in the page", func(t *testing.T) {
		for _, want := range []string{`<table id="results">`, "<th>naive-redis</th>", "Redis commands sent / like", `class="fail">FAIL`} {
			if !strings.Contains(html, want) {
				t.Errorf("HTML lacks %q", want)
			}
		}
	})
}

// chromium returns the path of Debian's chromium, failing (never skipping)
// when it is missing: scripts/test.sh installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: run scripts/test.sh, which installs it (Debian package chromium)")
	return ""
}

// TestReportDrawsInChromium opens the report in headless Chromium and
// checks, in the DOM after the scripts ran, that every chart drew every
// data point.
func TestReportDrawsInChromium(t *testing.T) {
	bin := chromium(t)
	r := sampleResults()
	dir := t.TempDir()
	path := filepath.Join(dir, "bench.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--no-first-run", "--disable-dev-shm-usage", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--window-size=1200,2000", "--dump-dom", "file://"+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	page := string(dom)

	if !strings.Contains(page, `data-charts="3"`) {
		t.Fatalf("the script did not finish drawing: no data-charts=\"3\" on body\n%s", stderr.String())
	}
	if got := strings.Count(page, `data-drawn="true"`); got != 3 {
		t.Errorf("got %d charts drawn, want 3", got)
	}
	// Throughput: 3 designs × 5 points. Latency: 3 designs × 3 lines × 5.
	// Redis: the two designs that use Redis × 5.
	for id, want := range map[string]string{"chart-throughput": "15", "chart-latency": "45", "chart-redis": "10"} {
		re := regexp.MustCompile(`<svg[^>]*id="` + id + `"[^>]*data-points="(\d+)"`)
		m := re.FindStringSubmatch(page)
		if m == nil {
			re = regexp.MustCompile(`<svg[^>]*data-points="(\d+)"[^>]*id="` + id + `"`)
			m = re.FindStringSubmatch(page)
		}
		if m == nil || m[1] != want {
			t.Errorf("%s: got data points %v, want %s", id, m, want)
		}
	}
	if got := strings.Count(page, `class="point"`); got != 70 {
		t.Errorf("got %d point elements in the DOM, want 70", got)
	}
	if got := strings.Count(page, "<polyline"); got != 3+9+2 {
		t.Errorf("got %d lines drawn, want 14", got)
	}
	if !strings.Contains(page, "3 charts drawn, 70 data points") {
		t.Errorf("the status line does not say the charts drew")
	}
}
