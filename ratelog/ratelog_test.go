package ratelog

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestOneLinePerIntervalCountingTheRest(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	l := New(zap.New(core), time.Hour)
	for range 1000 {
		l.Warn("redis down")
	}
	if got := logs.Len(); got != 1 {
		t.Fatalf("got %d lines, want 1", got)
	}
	l.last = time.Time{} // the interval has passed
	l.Warn("redis down")
	entries := logs.All()
	if len(entries) != 2 || entries[1].ContextMap()["suppressed"] != int64(999) {
		t.Fatalf("got %v, want a second line saying 999 were suppressed", entries)
	}
}

func TestNilLoggerLogsNothing(t *testing.T) {
	New(nil, time.Second).Warn("x")
}
