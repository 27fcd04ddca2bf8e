// Package ratelog writes warnings at most once per interval, so that an
// outage hit by 100,000 likes/s becomes a few log lines, not 100,000. Each
// line it does write says how many it suppressed since the last one.
package ratelog

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// Logger writes at most one warning per interval. Safe for concurrent use;
// a nil zap logger logs nothing.
type Logger struct {
	log      *zap.Logger
	interval time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// New returns a Logger writing to log at most once per interval.
func New(log *zap.Logger, interval time.Duration) *Logger {
	if log == nil {
		log = zap.NewNop()
	}
	return &Logger{log: log, interval: interval}
}

// Warn logs msg at warn level unless a line was logged less than interval ago.
func (l *Logger) Warn(msg string, fields ...zap.Field) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < l.interval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	if n > 0 {
		fields = append(fields, zap.Int("suppressed", n))
	}
	l.log.Warn(msg, fields...)
}
