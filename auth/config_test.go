package auth

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	if cfg.Mode != ModeJWT || cfg.UserHeader != "x-user-id" || cfg.CacheSize != 100_000 || cfg.Leeway != 30*time.Second {
		t.Errorf("got %+v, want jwt mode, x-user-id, 100000 entries, 30s leeway", cfg)
	}
	t.Run("needs a key source in jwt mode", func(t *testing.T) {
		if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), "auth.jwt_secret: ") {
			t.Errorf("got %v, want an auth.jwt_secret error", err)
		}
	})
	t.Run("is valid with a secret", func(t *testing.T) {
		if err := secretConfig().Validate(); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
	t.Run("is valid in header mode", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Mode = ModeHeader
		if err := cfg.Validate(); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
}

func TestValidateNamesTheKey(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		key    string
	}{
		{"an unknown mode", func(c *Config) { c.Mode = "JWT" }, "auth.mode"},
		{"an empty mode", func(c *Config) { c.Mode = "" }, "auth.mode"},
		{"a short secret", func(c *Config) { c.JWTSecret = strings.Repeat("s", MinSecretLen-1) }, "auth.jwt_secret"},
		{"a secret and a public key", func(c *Config) { c.PublicKeyFile = "k.pem" }, "auth.public_key_file"},
		{"a secret and a JWKS", func(c *Config) { c.JWKSFile = "k.json" }, "auth.jwks_file"},
		{"a public key and a JWKS", func(c *Config) { c.JWTSecret, c.PublicKeyFile, c.JWKSFile = "", "k.pem", "k.json" }, "auth.jwks_file"},
		{"a negative cache size", func(c *Config) { c.CacheSize = -1 }, "auth.cache_size"},
		{"a negative leeway", func(c *Config) { c.Leeway = -time.Second }, "auth.leeway"},
		{"a huge leeway", func(c *Config) { c.Leeway = MaxLeeway + time.Second }, "auth.leeway"},
		{"an empty user header in header mode", func(c *Config) { c.Mode, c.UserHeader = ModeHeader, "" }, "auth.user_header"},
		{"a user header with a space", func(c *Config) { c.Mode, c.UserHeader = ModeHeader, "x user" }, "auth.user_header"},
		{"a user header with a colon", func(c *Config) { c.Mode, c.UserHeader = ModeHeader, "x-user:" }, "auth.user_header"},
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			cfg := secretConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tt.key+": ") {
				t.Errorf("got %v, want an error starting %q", err, tt.key+": ")
			}
			if _, nerr := New(cfg, nil); nerr == nil {
				t.Errorf("New: got nil error, want one")
			}
		})
	}
	t.Run("never prints the secret", func(t *testing.T) {
		cfg := secretConfig()
		cfg.JWTSecret = "hunter2-hunter2"
		if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("got %v, want an error without the secret", err)
		}
	})
	t.Run("accepts zero cache size and zero leeway", func(t *testing.T) {
		cfg := secretConfig()
		cfg.CacheSize, cfg.Leeway = 0, 0
		if err := cfg.Validate(); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
}
