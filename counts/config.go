package counts

import (
	"errors"
	"fmt"
	"time"
)

// Config says how counts are laid out in Redis. The zero value is not valid;
// start from [DefaultConfig].
type Config struct {
	// Shards is K, the number of tail keys per post and bucket (counter.shards).
	Shards int
	// Bucket is the width of a tail bucket (counter.bucket).
	Bucket time.Duration
	// TailSpan is how many buckets back from now a read looks at most
	// (counter.tail_span). Events older than that which the consumer has not
	// yet folded into the base are missing from the count until it does.
	TailSpan int
	// TailTTL is how long a tail key lives after its last write (counter.tail_ttl).
	TailTTL time.Duration
	// BaseTTL is how long a base key lives after its last publication
	// (counter.base_ttl); a missing base is re-seeded from the database.
	BaseTTL time.Duration
	// Lateness is how far the watermark trails the consumer's clock
	// (counter.lateness): W = bucket(now − Lateness).
	Lateness time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Shards:   10,
		Bucket:   time.Second,
		TailSpan: 15,
		TailTTL:  5 * time.Minute,
		BaseTTL:  24 * time.Hour,
		Lateness: 2 * time.Second,
	}
}

// Validate reports the first invalid field, named by its configuration key.
func (c Config) Validate() error {
	switch {
	case c.Shards < 1 || c.Shards > 1024:
		return fmt.Errorf("counter.shards: must be between 1 and 1024, got %d", c.Shards)
	case c.Bucket < 10*time.Millisecond:
		return fmt.Errorf("counter.bucket: must be at least 10ms, got %s", c.Bucket)
	case c.TailSpan < 2 || c.TailSpan > 3600:
		return fmt.Errorf("counter.tail_span: must be between 2 and 3600 buckets, got %d", c.TailSpan)
	case c.TailTTL < time.Duration(c.TailSpan)*c.Bucket:
		return fmt.Errorf("counter.tail_ttl: must cover counter.tail_span buckets (%s), got %s", time.Duration(c.TailSpan)*c.Bucket, c.TailTTL)
	case c.BaseTTL < time.Minute:
		return fmt.Errorf("counter.base_ttl: must be at least 1m, got %s", c.BaseTTL)
	case c.Lateness < 0:
		return errors.New("counter.lateness: must not be negative")
	case c.Lateness >= time.Duration(c.TailSpan)*c.Bucket:
		return fmt.Errorf("counter.lateness: must be shorter than counter.tail_span buckets (%s), got %s", time.Duration(c.TailSpan)*c.Bucket, c.Lateness)
	}
	return nil
}

// Watermark returns the watermark for a publication at time now.
func (c Config) Watermark(now time.Time) int64 {
	return BucketOf(now.Add(-c.Lateness), c.Bucket)
}
