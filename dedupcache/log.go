package dedupcache

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// logLimiter writes at most one line per interval per limiter and reports how
// many it suppressed meanwhile, so a Redis outage at 100,000 likes/s is a few
// log lines, not 100,000. Safe for concurrent use; a nil logger logs nothing.
type logLimiter struct {
	log      *zap.Logger
	interval time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func newLogLimiter(log *zap.Logger, interval time.Duration) *logLimiter {
	if log == nil {
		log = zap.NewNop()
	}
	return &logLimiter{log: log, interval: interval}
}

// Warn logs msg at warn level unless a line was logged less than interval ago.
func (l *logLimiter) Warn(msg string, fields ...zap.Field) {
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
