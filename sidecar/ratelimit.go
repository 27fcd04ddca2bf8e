package sidecar

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// rateLimitedLogger logs at most one line per interval and counts what it
// dropped, so that an outage does not flood the log.
type rateLimitedLogger struct {
	log      *zap.Logger
	interval time.Duration
	mu       sync.Mutex
	last     time.Time
	dropped  int
}

func newRateLimitedLogger(log *zap.Logger, interval time.Duration) *rateLimitedLogger {
	return &rateLimitedLogger{log: log, interval: interval}
}

// Warn logs msg unless a line was logged less than interval ago.
func (r *rateLimitedLogger) Warn(msg string, fields ...zap.Field) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < r.interval {
		r.dropped++
		r.mu.Unlock()
		return
	}
	dropped := r.dropped
	r.last, r.dropped = now, 0
	r.mu.Unlock()
	if dropped > 0 {
		fields = append(fields, zap.Int("suppressed", dropped))
	}
	r.log.Warn(msg, fields...)
}
