package client

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config configures a [Client]. Start from [DefaultConfig].
type Config struct {
	// BaseURL is the sidecar's address, with the sidecar's http.path_prefix
	// if it has one: "http://127.0.0.1:8080" or "http://127.0.0.1:8080/api".
	BaseURL string
	// Timeout bounds a call whose context has no deadline. A context
	// deadline, when set, wins (shorter or longer).
	Timeout time.Duration
	// MaxIdleConns is how many idle connections to the sidecar are kept for
	// reuse. Size it to the application's concurrent calls.
	MaxIdleConns int
	// IdleConnTimeout closes an idle kept connection after this long.
	IdleConnTimeout time.Duration
	// UserAgent is sent with every request.
	UserAgent string
}

// DefaultConfig returns a configuration for the sidecar's default address.
func DefaultConfig() Config {
	return Config{
		BaseURL:         "http://127.0.0.1:8080",
		Timeout:         time.Second,
		MaxIdleConns:    64,
		IdleConnTimeout: 90 * time.Second,
		UserAgent:       "likes-go-client/1",
	}
}

// ErrInvalidConfig is wrapped by every error of [Config.Validate].
var ErrInvalidConfig = errors.New("client: invalid config")

// Validate reports the first invalid field.
func (c Config) Validate() error {
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil:
		return fmt.Errorf("%w: BaseURL %q: %v", ErrInvalidConfig, c.BaseURL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w: BaseURL %q: want an http:// or https:// URL", ErrInvalidConfig, c.BaseURL)
	case u.Host == "":
		return fmt.Errorf("%w: BaseURL %q: no host", ErrInvalidConfig, c.BaseURL)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%w: BaseURL %q: must not have a query or fragment", ErrInvalidConfig, c.BaseURL)
	case strings.HasSuffix(u.Path, "/"):
		return fmt.Errorf("%w: BaseURL %q: must not end with /", ErrInvalidConfig, c.BaseURL)
	case c.Timeout <= 0:
		return fmt.Errorf("%w: Timeout must be positive, got %s", ErrInvalidConfig, c.Timeout)
	case c.MaxIdleConns < 1:
		return fmt.Errorf("%w: MaxIdleConns must be at least 1, got %d", ErrInvalidConfig, c.MaxIdleConns)
	case c.IdleConnTimeout <= 0:
		return fmt.Errorf("%w: IdleConnTimeout must be positive, got %s", ErrInvalidConfig, c.IdleConnTimeout)
	}
	return nil
}
