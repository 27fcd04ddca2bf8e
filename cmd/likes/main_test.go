package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/auth"
	"github.com/likes-sidecar/likes/internal/apitest"
	"github.com/likes-sidecar/likes/internal/testenv"
)

const secret = "cli-test-secret-0123456789-0123456789-xyz"

// startDev runs `likes dev` as a child process and waits until it is ready.
func startDev(t *testing.T, bin, dataDir string) (*testenv.Process, *apitest.Client) {
	t.Helper()
	port := testenv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "dev", "--listen", addr, "--data-dir", dataDir, "--jwt-secret", secret)
	p := testenv.StartProcess(t, cmd)
	c := &apitest.Client{Base: "http://" + addr, Secret: secret}
	testenv.Eventually(t, 30*time.Second, func() error {
		if p.Exited() {
			t.Fatalf("likes dev exited: %s", p.Output())
		}
		resp, err := http.Get(c.Base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz: %d", resp.StatusCode)
		}
		return nil
	})
	return p, c
}

func TestDevAnswersTheContract(t *testing.T) {
	bin := testenv.Build(t, "./cmd/likes")
	_, c := startDev(t, bin, t.TempDir())
	apitest.Contract(t, c, 11)
}

// TestDevKeepsLikesAcrossARestart: likes survive a graceful restart of
// likes dev (SIGTERM drains the in-memory log into SQLite), and afterwards
// the count and the 409s come back right.
func TestDevKeepsLikesAcrossARestart(t *testing.T) {
	bin := testenv.Build(t, "./cmd/likes")
	dir := t.TempDir()
	p, c := startDev(t, bin, dir)
	for u := int64(1); u <= 50; u++ {
		if r := c.Like(t, 5, u); r.Status != 200 {
			t.Fatalf("like %d: got %d %s", u, r.Status, r.Raw)
		}
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitTimeout(20 * time.Second); err != nil {
		t.Fatalf("likes dev did not exit cleanly on SIGTERM: %v\n%s", err, p.Output())
	}
	_, c = startDev(t, bin, dir)
	c.WaitCount(t, 5, 50, 10*time.Second)
	if r := c.Like(t, 5, 7); r.Status != 409 {
		t.Fatalf("like after restart: got %d %s, want 409", r.Status, r.Raw)
	}
	if r := c.Unlike(t, 5, 7); r.Status != 200 {
		t.Fatalf("unlike after restart: got %d %s, want 200", r.Status, r.Raw)
	}
	c.WaitCount(t, 5, 49, 10*time.Second)
}

func run(t *testing.T, bin string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cmd.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestBadConfigurationIsAClearErrorAndNonZeroExit(t *testing.T) {
	bin := testenv.Build(t, "./cmd/likes")
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"misspelt env key", []string{"LIKES_COUNTER_SHARD=3"}, []string{"config"}, "LIKES_COUNTER_SHARD"},
		{"bad duration", []string{"LIKES_COALESCE_WINDOW=fast"}, []string{"config"}, "coalesce.window"},
		{"window too long", []string{"LIKES_COALESCE_WINDOW=1s", "LIKES_DB_URL=sqlite:" + filepath.Join(t.TempDir(), "x.db"), "LIKES_AUTH_JWT_SECRET=" + secret}, []string{"serve"}, "coalesce.window"},
		{"no database", nil, []string{"serve", "--jwt-secret", secret}, "db.url"},
		{"bad user id", nil, []string{"token", "--user", "-4"}, "--user"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := run(t, bin, c.env, c.args...)
			if err == nil {
				t.Fatalf("got exit 0, want an error; output: %s", out)
			}
			if !strings.Contains(out, c.want) {
				t.Fatalf("got %q, want a message naming %s", out, c.want)
			}
		})
	}
}

func TestTokenVerifies(t *testing.T) {
	bin := testenv.Build(t, "./cmd/likes")
	out, err := run(t, bin, nil, "token", "--user", "42", "--secret", secret, "--ttl", "5m")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	a, err := auth.New(auth.Config{Mode: "jwt", JWTSecret: secret, UserHeader: "x-user-id", CacheSize: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.Authenticate("Bearer "+strings.TrimSpace(out), "")
	if err != nil || u != 42 {
		t.Fatalf("got %d, %v, want 42", u, err)
	}
}

func TestConfigRedactsSecrets(t *testing.T) {
	bin := testenv.Build(t, "./cmd/likes")
	out, err := run(t, bin, []string{"LIKES_AUTH_JWT_SECRET=" + secret, "LIKES_DB_URL=postgres://u:pw@h/db"}, "config")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, "pw@") {
		t.Fatalf("secrets leaked:\n%s", out)
	}
	if !strings.Contains(out, "coalesce.window = 100ms") {
		t.Fatalf("got:\n%s\nwant the effective configuration", out)
	}
}
