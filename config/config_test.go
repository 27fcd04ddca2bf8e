package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestDefaults(t *testing.T) {
	v, err := Load(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Duration("coalesce.window"); got != 100*time.Millisecond {
		t.Fatalf("got %v, want 100ms", got)
	}
	if got := v.Int("counter.shards"); got != 10 {
		t.Fatalf("got %v, want 10", got)
	}
	if got := v.String("kafka.topic"); got != "like_events" {
		t.Fatalf("got %q, want like_events", got)
	}
}

func TestPrecedenceFlagOverEnvOverFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "likes.yaml")
	os.WriteFile(file, []byte("counter:\n  shards: 7\nread:\n  cache_ttl: 2s\nredis:\n  addrs: [a:1, b:2]\nhttp:\n  listen: file:1\n"), 0o600)
	t.Setenv("LIKES_READ_CACHE_TTL", "3s")
	t.Setenv("LIKES_HTTP_LISTEN", "env:1")
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	AddFlags(fs, "http.listen")
	fs.Parse([]string{"--listen", "flag:1"})
	v, err := Load(fs, file)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Int("counter.shards"); got != 7 {
		t.Fatalf("file: got %d, want 7", got)
	}
	if got := v.Duration("read.cache_ttl"); got != 3*time.Second {
		t.Fatalf("env over file: got %v, want 3s", got)
	}
	if got := v.String("http.listen"); got != "flag:1" {
		t.Fatalf("flag over env: got %q, want flag:1", got)
	}
	if got := strings.Join(v.List("redis.addrs"), ","); got != "a:1,b:2" {
		t.Fatalf("list: got %q", got)
	}
}

func TestStrictErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file, env, val, want string
	}{
		{"misspelt file key", "counter:\n  shard: 7\n", "", "", `unknown key "counter.shard"`},
		{"misspelt environment variable", "", "LIKES_COUNTER_SHARD", "7", "LIKES_COUNTER_SHARD"},
		{"bad duration", "", "LIKES_COALESCE_WINDOW", "100", "coalesce.window"},
		{"bad integer", "", "LIKES_COUNTER_SHARDS", "ten", "counter.shards"},
		{"bad bool", "", "LIKES_DB_MIGRATE", "maybe", "db.migrate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := ""
			if c.file != "" {
				file = filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".yaml")
				os.WriteFile(file, []byte(c.file), 0o600)
			}
			if c.env != "" {
				t.Setenv(c.env, c.val)
			}
			_, err := Load(nil, file)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	t.Setenv("LIKES_AUTH_JWT_SECRET", "hunter2")
	v, err := Load(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range v.Redacted() {
		if strings.Contains(l, "hunter2") {
			t.Fatalf("got %q, want the secret redacted", l)
		}
	}
}

func TestEnvNames(t *testing.T) {
	k, _ := Lookup("auth.jwt_secret")
	if got := k.Env(); got != "LIKES_AUTH_JWT_SECRET" {
		t.Fatalf("got %s, want LIKES_AUTH_JWT_SECRET", got)
	}
}
