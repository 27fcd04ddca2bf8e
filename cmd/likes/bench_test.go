package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/internal/testenv"
)

// TestBenchCommand runs `likes bench` as a user would: zero set-up, the
// sidecar in a child process, --json and --report.
func TestBenchCommand(t *testing.T) {
	bin := testenv.Build(t, "./cmd/likes")
	dir := t.TempDir()
	report := filepath.Join(dir, "bench.html")
	cmd := exec.Command(bin, "bench", "--duration", "1500ms", "--rate", "60", "--json", "--report", report, "--sidecar-process")
	cmd.Env = append(os.Environ(), "LIKES_COUNTER_LATENESS=0s", "LIKES_READ_CACHE_TTL=100ms")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	timer := time.AfterFunc(4*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("likes bench: got %v, want exit 0\n%s", err, stderr.String())
	}
	var res struct {
		Mode    string `json:"mode"`
		Designs []struct {
			Design    string  `json:"design"`
			RSSSource string  `json:"rss_source"`
			MaxRSSMiB float64 `json:"max_rss_mib"`
			Verdict   struct {
				Status string `json:"status"`
			} `json:"verdict"`
		} `json:"designs"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("--json: got %v, want JSON on stdout:\n%s", err, out)
	}
	if res.Mode != "embedded" || len(res.Designs) != 1 || res.Designs[0].Verdict.Status != "exact" {
		t.Errorf("got %+v, want one exact likes design on the embedded system", res)
	}
	if d := res.Designs[0]; !strings.Contains(d.RSSSource, "sidecar process alone") || d.MaxRSSMiB <= 0 {
		t.Errorf("got RSS %v MiB of %q, want the child sidecar's", d.MaxRSSMiB, d.RSSSource)
	}
	for _, want := range []string{"STAND-INS", "likes/s achieved", "verdict likes: exact", "report written to"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	html, err := os.ReadFile(report)
	if err != nil || !strings.Contains(string(html), `<svg class="chart"`) {
		t.Errorf("--report: got %v, want an HTML report with charts", err)
	}
}

// TestBenchFailsLoudly: a target whose count is wrong makes `likes bench`
// exit non-zero and say why.
func TestBenchFailsLoudly(t *testing.T) {
	bin := testenv.Build(t, "./cmd/likes")
	// Answers every like 200 and every count 0: it loses every like.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			w.Write([]byte(`{"post_id":1,"count":0,"is_approximate":true}`))
			return
		}
		w.Write([]byte(`{"liked":true}`))
	}))
	defer srv.Close()
	cmd := exec.Command(bin, "bench", "--target", srv.URL, "--duration", "1s", "--rate", "20", "--settle", "2s")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("got %v, want a non-zero exit\n%s", err, out)
	}
	for _, want := range []string{"verdict likes: FAIL", "count 0 <", "correctness verdict failed"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchRejectsBadFlags(t *testing.T) {
	bin := testenv.Build(t, "./cmd/likes")
	for _, args := range [][]string{
		{"--scenario", "flood"},
		{"--compare", "--designs", "likes"},
		{"--redis-addrs", "127.0.0.1:6379"}, // without --db-url
		{"--target", "http://a:1", "--compare"},
	} {
		out, err := exec.Command(bin, append([]string{"bench"}, args...)...).CombinedOutput()
		if err == nil {
			t.Errorf("%v: got exit 0, want an error\n%s", args, out)
		}
		if strings.Contains(string(out), "minting") {
			t.Errorf("%v: the run started before the flags were checked:\n%s", args, out)
		}
	}
}
