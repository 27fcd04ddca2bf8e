package main

import (
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/likes-sidecar/likes/config"
)

// captureLogger builds the logger of `likes` for the given level and format
// with its stderr sink redirected, runs f, and returns the lines written.
func captureLogger(t *testing.T, level, format string, f func(logFuncs)) []string {
	t.Helper()
	v, err := config.Load(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	v.Set("log.level", level)
	v.Set("log.format", format)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w // zap opens "stderr" when the logger is built
	log, err := newLogger(v)
	os.Stderr = saved
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	s := log.Sugar()
	f(sugar{s.Infow, s.Errorw})
	log.Sync()
	w.Close()
	out := strings.TrimSpace(string(<-done))
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// logFuncs is the part of a logger the tests call.
type logFuncs interface {
	Info(msg string, keysAndValues ...any)
	Error(msg string, keysAndValues ...any)
}

type sugar struct {
	info, err func(string, ...any)
}

func (s sugar) Info(m string, kv ...any)  { s.info(m, kv...) }
func (s sugar) Error(m string, kv ...any) { s.err(m, kv...) }

func TestLogging(t *testing.T) {
	t.Run("json format writes one JSON object per line", func(t *testing.T) {
		lines := captureLogger(t, "info", "json", func(l logFuncs) {
			l.Info("likes serve ready", "listen", "127.0.0.1:8080")
		})
		if len(lines) != 1 {
			t.Fatalf("got %d lines, want 1: %q", len(lines), lines)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
			t.Fatalf("got %q, want JSON: %v", lines[0], err)
		}
		if m["level"] != "info" || m["msg"] != "likes serve ready" || m["listen"] != "127.0.0.1:8080" || m["ts"] == nil {
			t.Fatalf("got %v, want level, msg, ts and the field", m)
		}
	})
	t.Run("console format is for people", func(t *testing.T) {
		lines := captureLogger(t, "info", "console", func(l logFuncs) {
			l.Info("likes dev ready")
		})
		if len(lines) != 1 || !strings.Contains(lines[0], "INFO") || json.Valid([]byte(lines[0])) {
			t.Fatalf("got %q, want one human-readable INFO line", lines)
		}
	})
	t.Run("the level filters", func(t *testing.T) {
		lines := captureLogger(t, "warn", "json", func(l logFuncs) {
			l.Info("noise")
			l.Error("redis down")
		})
		if len(lines) != 1 || !strings.Contains(lines[0], "redis down") {
			t.Fatalf("got %q, want only the error", lines)
		}
	})
	t.Run("a flood of identical errors is sampled", func(t *testing.T) {
		const n = 5000
		lines := captureLogger(t, "info", "json", func(l logFuncs) {
			for range n {
				l.Error("counter flush to redis failed")
			}
		})
		// 20 per second, then every 100th: about 70 of 5000 within a second.
		if len(lines) < 20 || len(lines) > 200 {
			t.Fatalf("got %d lines for %d identical errors, want between 20 and 200", len(lines), n)
		}
	})
	t.Run("bad level or format is an error naming the key", func(t *testing.T) {
		v, _ := config.Load(nil, "")
		v.Set("log.level", "loud")
		if _, err := newLogger(v); err == nil || !strings.Contains(err.Error(), "log.level") {
			t.Fatalf("got %v, want an error naming log.level", err)
		}
		v.Set("log.level", "info")
		v.Set("log.format", "xml")
		if _, err := newLogger(v); err == nil || !strings.Contains(err.Error(), "log.format") {
			t.Fatalf("got %v, want an error naming log.format", err)
		}
	})
}
