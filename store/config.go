package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config says which database to open and how. The zero value is not valid;
// start from [DefaultConfig] and set URL.
type Config struct {
	// URL selects the dialect and the database (db.url):
	// "postgres://…" or "postgresql://…" (a pgx connection URL), or
	// "sqlite://path" or "sqlite:path" (a file, created if missing;
	// "sqlite::memory:" for a private in-memory database).
	URL string
	// MaxConns bounds the connection pool (db.max_conns). 0 means the
	// driver's default: max(4, GOMAXPROCS) for PostgreSQL, 4 for SQLite.
	MaxConns int
	// ConnectTimeout bounds each connection attempt, including the one
	// [OpenConfig] makes to check that the server is reachable
	// (db.connect_timeout).
	ConnectTimeout time.Duration
	// BusyTimeout is how long a SQLite statement waits for another
	// connection's write lock before failing with SQLITE_BUSY
	// (db.busy_timeout). Unused for PostgreSQL.
	BusyTimeout time.Duration

	// tracer, when set, sees every PostgreSQL statement (tests count
	// round trips with it).
	tracer pgx.QueryTracer
}

// DefaultConfig returns the documented defaults, with an empty URL.
func DefaultConfig() Config {
	return Config{
		ConnectTimeout: 5 * time.Second,
		BusyTimeout:    10 * time.Second,
	}
}

// Validate reports the first invalid field, named by its configuration key.
// It parses URL without connecting.
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("db.url: must be set (postgres://…, postgresql://…, sqlite://path or sqlite:path)")
	case c.MaxConns < 0:
		return fmt.Errorf("db.max_conns: must not be negative, got %d", c.MaxConns)
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("db.connect_timeout: must be positive, got %s", c.ConnectTimeout)
	case c.BusyTimeout < time.Millisecond:
		return fmt.Errorf("db.busy_timeout: must be at least 1ms, got %s", c.BusyTimeout)
	}
	if _, err := parseURL(c.URL); err != nil {
		return fmt.Errorf("db.url: %w", err)
	}
	return nil
}
