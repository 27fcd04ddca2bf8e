package envoy

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: got %v, want nil", err)
	}
	cases := []struct {
		name string
		edit func(*Config)
		key  string
	}{
		{"no streams", func(c *Config) { c.MaxConcurrentStreams = 0 }, "extproc.max_concurrent_streams"},
		{"keepalive below a second", func(c *Config) { c.KeepaliveTime = 500 * time.Millisecond }, "extproc.keepalive_time"},
		{"no keepalive timeout", func(c *Config) { c.KeepaliveTimeout = 0 }, "extproc.keepalive_timeout"},
		{"a negative ping interval", func(c *Config) { c.KeepaliveMinTime = -time.Second }, "extproc.keepalive_min_time"},
		{"no drain time", func(c *Config) { c.DrainTimeout = 0 }, "extproc.drain_timeout"},
		{"a user header with a space", func(c *Config) { c.UserHeader = "x user" }, "auth.user_header"},
		{"a pseudo-header as user header", func(c *Config) { c.UserHeader = ":authority" }, "auth.user_header"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is refused naming "+tc.key, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tc.key+":") {
				t.Fatalf("got %v, want an error starting with %s:", err, tc.key)
			}
			if _, err := New(c, Deps{API: staticAPI{}}); err == nil {
				t.Fatal("New: got nil error, want the validation error")
			}
		})
	}
	t.Run("a missing API is refused", func(t *testing.T) {
		if _, err := New(DefaultConfig(), Deps{}); err == nil {
			t.Fatal("got nil error, want one")
		}
	})
}
