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

// TestJSONConfigFileIntegers: the --config flag promises YAML, JSON or TOML,
// but JSON numbers decode as float64 and every Int key in a JSON file was
// refused ("unexpected value 5000 (float64)").
func TestJSONConfigFileIntegers(t *testing.T) {
	f := filepath.Join(t.TempDir(), "likes.json")
	if err := os.WriteFile(f, []byte(`{"coalesce":{"max_batch":5000},"counter":{"shards":7},"db":{"migrate":true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := Load(nil, f)
	if err != nil {
		t.Fatalf("JSON config file: %v", err)
	}
	if got := v.Int("counter.shards"); got != 7 {
		t.Fatalf("counter.shards: got %d, want 7", got)
	}
	if got := v.Int("coalesce.max_batch"); got != 5000 {
		t.Fatalf("coalesce.max_batch: got %d, want 5000", got)
	}
	// A fractional number is still refused, naming the key.
	if err := os.WriteFile(f, []byte(`{"counter":{"shards":7.5}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(nil, f); err == nil {
		t.Fatal("counter.shards 7.5: got no error")
	}
}

// TestEmptyEnvironmentOverridesFile: environment beats file, also when the
// variable is set to the empty string. Viper ignored empty variables, so
// LIKES_ADMIN_LISTEN= could not turn off an admin listener a file sets
// (likes bench --sidecar-process relies on exactly that to keep the child's
// /readyz and /metrics on its API port, and with a --config file that sets
// admin.listen the child never became ready).
func TestEmptyEnvironmentOverridesFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "likes.yaml")
	if err := os.WriteFile(f, []byte("admin:\n  listen: 127.0.0.1:9090\nhttp:\n  path_prefix: /api\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LIKES_ADMIN_LISTEN", "")
	t.Setenv("LIKES_HTTP_PATH_PREFIX", "")
	v, err := Load(nil, f)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.String("admin.listen"); got != "" {
		t.Errorf("admin.listen: got %q from the file, want \"\" from LIKES_ADMIN_LISTEN", got)
	}
	if got := v.String("http.path_prefix"); got != "" {
		t.Errorf("http.path_prefix: got %q from the file, want \"\" from LIKES_HTTP_PATH_PREFIX", got)
	}
}

// TestExplicit: a key counts as explicit when a flag that was set, its
// environment variable (even empty) or the file gives it, not when only its
// default does (likes dev then uses its own default for log.format).
func TestExplicit(t *testing.T) {
	f := filepath.Join(t.TempDir(), "likes.yaml")
	if err := os.WriteFile(f, []byte("log:\n  format: json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs, "http.listen", "log.level")
	if err := fs.Parse([]string{"--listen", "127.0.0.1:9"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LIKES_HTTP_PATH_PREFIX", "")
	v, err := Load(fs, f)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"log.format":       true,  // file
		"http.listen":      true,  // flag
		"http.path_prefix": true,  // environment, empty
		"log.level":        false, // a flag that was not set
		"counter.shards":   false, // default
	} {
		if got := v.Explicit(name); got != want {
			t.Errorf("Explicit(%q): got %v, want %v", name, got, want)
		}
	}
}
