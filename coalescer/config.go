package coalescer

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/pacing"
)

// Config tunes the coalescer. Start from [DefaultConfig].
type Config struct {
	// SidecarID names this sidecar in events and event ids ([A-Za-z0-9._-], ≤ 64 bytes).
	SidecarID string
	// Window is the counter flush interval (coalesce.window).
	Window time.Duration
	// MaxBatch is the most events in one log publish (coalesce.max_batch).
	MaxBatch int
	// MaxPending is the most events waiting for the log (coalesce.max_pending);
	// beyond it Submit sheds load with ErrOverloaded.
	MaxPending int
	// MaxInflight is how many log publishes may run at once (coalesce.max_inflight).
	MaxInflight int
	// PublishTimeout bounds one log publish (coalesce.publish_timeout).
	PublishTimeout time.Duration
	// Pace holds a publish under load so that batches grow (flush.linger,
	// flush.linger_above); the zero value never holds.
	Pace pacing.Config
	// Counts is the Redis count layout (shards, bucket width, tail TTL).
	Counts counts.Config
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		SidecarID:      "sidecar",
		Window:         100 * time.Millisecond,
		MaxBatch:       5000,
		MaxPending:     50000,
		MaxInflight:    4,
		PublishTimeout: 2 * time.Second,
		Pace:           pacing.DefaultConfig(),
		Counts:         counts.DefaultConfig(),
	}
}

var sidecarIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Validate reports the first invalid field, named by its configuration key.
func (c Config) Validate() error {
	switch {
	case !sidecarIDRe.MatchString(c.SidecarID):
		return fmt.Errorf("sidecar.id: must be 1-64 characters of [A-Za-z0-9._-], got %q", c.SidecarID)
	case c.Window < time.Millisecond || c.Window > 100*time.Millisecond:
		return fmt.Errorf("coalesce.window: must be between 1ms and 100ms, got %s", c.Window)
	case c.MaxBatch < 1:
		return errors.New("coalesce.max_batch: must be at least 1")
	case c.MaxPending < c.MaxBatch:
		return fmt.Errorf("coalesce.max_pending: must be at least coalesce.max_batch (%d), got %d", c.MaxBatch, c.MaxPending)
	case c.MaxInflight < 1 || c.MaxInflight > 64:
		return fmt.Errorf("coalesce.max_inflight: must be between 1 and 64, got %d", c.MaxInflight)
	case c.PublishTimeout <= 0:
		return errors.New("coalesce.publish_timeout: must be positive")
	}
	if err := c.Pace.Validate(); err != nil {
		return err
	}
	return c.Counts.Validate()
}
