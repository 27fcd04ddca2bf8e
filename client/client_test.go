package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/client"
	"github.com/likes-sidecar/likes/internal/memsidecar"
)

// startSidecar serves the real API over in-memory stand-ins; newConns counts
// the TCP connections it accepted.
func startSidecar(t *testing.T, o memsidecar.Options) (s *memsidecar.Sidecar, newConns *atomic.Int64) {
	t.Helper()
	newConns = new(atomic.Int64)
	o.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			newConns.Add(1)
		}
	}
	s, err := memsidecar.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close sidecar: %v", err)
		}
	})
	return s, newConns
}

func newClient(t testing.TB, base string) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.BaseURL = base
	cfg.Timeout = 10 * time.Second // a loaded CI machine with -race is slow; deadline tests set their own
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestLikeUnlikeCount(t *testing.T) {
	s, _ := startSidecar(t, memsidecar.Options{})
	c := newClient(t, s.URL)
	ctx := context.Background()
	alice, bob := client.Bearer(s.Token(1)), client.Bearer(s.Token(2))

	t.Run("a like is accepted once, then is ErrAlreadyLiked", func(t *testing.T) {
		if err := c.Like(ctx, alice, 10); err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		err := c.Like(ctx, alice, 10)
		if !errors.Is(err, client.ErrAlreadyLiked) {
			t.Fatalf("got %v, want ErrAlreadyLiked", err)
		}
		var e *client.Error
		if !errors.As(err, &e) || e.Status != 409 || e.Code != "already_liked" || e.Message == "" {
			t.Fatalf("got %#v, want a 409 already_liked *Error with a message", e)
		}
		if !s.Liked(10, 1) {
			t.Fatalf("got no like in the log, want one")
		}
	})
	t.Run("the count includes the like at once", func(t *testing.T) {
		if err := c.Like(ctx, bob, 10); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Count(ctx, 10); err != nil || n != 2 {
			t.Fatalf("got %d, %v, want 2, nil", n, err)
		}
	})
	t.Run("an unlike works once, then is ErrNotLiked", func(t *testing.T) {
		if err := c.Unlike(ctx, bob, 10); err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		if err := c.Unlike(ctx, bob, 10); !errors.Is(err, client.ErrNotLiked) {
			t.Fatalf("got %v, want ErrNotLiked", err)
		}
		if err := c.Unlike(ctx, bob, 11); !errors.Is(err, client.ErrNotLiked) {
			t.Fatalf("never liked: got %v, want ErrNotLiked", err)
		}
		if n, err := c.Count(ctx, 10); err != nil || n != 1 {
			t.Fatalf("got %d, %v, want 1, nil", n, err)
		}
	})
	t.Run("a post nobody liked counts zero", func(t *testing.T) {
		if n, err := c.Count(ctx, 999); err != nil || n != 0 {
			t.Fatalf("got %d, %v, want 0, nil", n, err)
		}
	})
	t.Run("missing, garbage and foreign tokens are ErrUnauthorized", func(t *testing.T) {
		for name, cred := range map[string]client.Credentials{
			"none":    {},
			"garbage": client.Bearer("abc.def.ghi"),
			"empty":   client.Bearer(""),
		} {
			err := c.Like(ctx, cred, 10)
			if !errors.Is(err, client.ErrUnauthorized) {
				t.Fatalf("%s: got %v, want ErrUnauthorized", name, err)
			}
			if errors.Is(err, client.ErrAlreadyLiked) || errors.Is(err, client.ErrUnavailable) {
				t.Fatalf("%s: got %v matching a second sentinel", name, err)
			}
		}
	})
}

func TestInvalidPostIsRefusedWithoutARequest(t *testing.T) {
	s, conns := startSidecar(t, memsidecar.Options{})
	c := newClient(t, s.URL)
	tok := client.Bearer(s.Token(1))
	for _, post := range []int64{0, -1, -1 << 63} {
		if err := c.Like(context.Background(), tok, post); !errors.Is(err, client.ErrInvalidPost) {
			t.Fatalf("like post %d: got %v, want ErrInvalidPost", post, err)
		}
		if err := c.Unlike(context.Background(), tok, post); !errors.Is(err, client.ErrInvalidPost) {
			t.Fatalf("unlike post %d: got %v, want ErrInvalidPost", post, err)
		}
		if _, err := c.Count(context.Background(), post); !errors.Is(err, client.ErrInvalidPost) {
			t.Fatalf("count post %d: got %v, want ErrInvalidPost", post, err)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("got %d connections, want 0", n)
	}
}

func TestLogOutageIsAnOverloadErrorWithRetryAfter(t *testing.T) {
	s, _ := startSidecar(t, memsidecar.Options{})
	c := newClient(t, s.URL)
	s.FailLog(true)
	err := c.Like(context.Background(), client.Bearer(s.Token(5)), 20)
	var oe *client.OverloadError
	if !errors.As(err, &oe) {
		t.Fatalf("got %v (%T), want an *OverloadError", err, err)
	}
	if oe.RetryAfter != time.Second || oe.Code != "log_unavailable" {
		t.Fatalf("got Retry-After %v and code %q, want 1s and log_unavailable", oe.RetryAfter, oe.Code)
	}
	if !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("got %v, want it to match ErrUnavailable", err)
	}
	if d, ok := client.RetryAfter(err); !ok || d != time.Second {
		t.Fatalf("RetryAfter: got %v, %v, want 1s, true", d, ok)
	}
	if _, ok := client.RetryAfter(fmt.Errorf("wrapped: %w", client.ErrNotLiked)); ok {
		t.Fatalf("RetryAfter of a non-overload error: got true, want false")
	}
	s.FailLog(false)
	if err := c.Like(context.Background(), client.Bearer(s.Token(5)), 20); err != nil {
		t.Fatalf("after the outage: got %v, want nil (the refused like was not counted)", err)
	}
}

func TestCallsReuseConnections(t *testing.T) {
	s, conns := startSidecar(t, memsidecar.Options{})
	c := newClient(t, s.URL)
	ctx := context.Background()
	tok := client.Bearer(s.Token(3))
	t.Run("sequential calls share one connection, error answers included", func(t *testing.T) {
		for i := range 50 {
			c.Like(ctx, tok, 30)   // 200 once, then 409
			c.Count(ctx, 30)       // 200
			c.Unlike(ctx, tok, 31) // 404
			c.Like(ctx, client.Credentials{}, 30)
			if i == 0 && conns.Load() != 1 {
				t.Fatalf("got %d connections after the first round, want 1", conns.Load())
			}
		}
		if n := conns.Load(); n != 1 {
			t.Fatalf("got %d connections for 200 calls, want 1", n)
		}
	})
	t.Run("800 concurrent calls from 8 callers open about one connection per caller", func(t *testing.T) {
		before := conns.Load()
		const workers = 8
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range 100 {
					if _, err := c.Count(ctx, 30); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		// net/http may dial a connection for a request that then gets an
		// idle one freed meanwhile (the dialed one joins the pool), so allow
		// a little more than one per caller; without reuse it would be 800.
		if n := conns.Load() - before; n > 2*workers {
			t.Fatalf("got %d new connections for %d workers, want at most %d", n, workers, 2*workers)
		}
	})
	t.Run("Close drops idle connections and the client still works", func(t *testing.T) {
		before := conns.Load()
		c.Close()
		if _, err := c.Count(ctx, 30); err != nil {
			t.Fatal(err)
		}
		if n := conns.Load() - before; n != 1 {
			t.Fatalf("got %d new connections after Close, want 1", n)
		}
	})
}

func TestDeadlines(t *testing.T) {
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(stuck.Close)
	t.Cleanup(func() { close(release) })

	t.Run("a context deadline ends a call to a stuck sidecar", func(t *testing.T) {
		c := newClient(t, stuck.URL)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := c.Like(ctx, client.Bearer("x"), 1)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Fatalf("got the error after %v, want it at the 50ms deadline (before Config.Timeout)", d)
		}
	})
	t.Run("without a context deadline Config.Timeout bounds the call", func(t *testing.T) {
		cfg := client.DefaultConfig()
		cfg.BaseURL, cfg.Timeout = stuck.URL, 80*time.Millisecond
		c, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_, err = c.Count(context.Background(), 1)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d < 80*time.Millisecond || d > 2*time.Second {
			t.Fatalf("got the error after %v, want it at about 80ms", d)
		}
	})
	t.Run("a longer context deadline wins over Config.Timeout", func(t *testing.T) {
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(150 * time.Millisecond) // the server is slow on purpose: the client must wait for it
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"post_id":1,"count":7,"is_approximate":true}`))
		}))
		defer slow.Close()
		cfg := client.DefaultConfig()
		cfg.BaseURL, cfg.Timeout = slow.URL, 50*time.Millisecond
		c, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if n, err := c.Count(ctx, 1); err != nil || n != 7 {
			t.Fatalf("got %d, %v, want 7, nil", n, err)
		}
	})
	t.Run("a cancelled context fails at once", func(t *testing.T) {
		c := newClient(t, stuck.URL)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.Unlike(ctx, client.Bearer("x"), 1); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want Canceled", err)
		}
	})
}

func TestPathPrefixAndHeaderAuth(t *testing.T) {
	s, _ := startSidecar(t, memsidecar.Options{PathPrefix: "/api", HeaderAuth: true})
	if !strings.HasSuffix(s.URL, "/api") {
		t.Fatalf("got URL %s, want the /api prefix", s.URL)
	}
	c := newClient(t, s.URL)
	ctx := context.Background()
	if err := c.Like(ctx, client.UserHeader("x-user-id", 77), 40); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if !s.Liked(40, 77) {
		t.Fatalf("got no like of user 77, want one (the header names the user)")
	}
	if err := c.Like(ctx, client.UserHeader("X-User-Id", 77), 40); !errors.Is(err, client.ErrAlreadyLiked) {
		t.Fatalf("got %v, want ErrAlreadyLiked", err)
	}
	if n, err := c.Count(ctx, 40); err != nil || n != 1 {
		t.Fatalf("got %d, %v, want 1, nil", n, err)
	}
	if err := c.Like(ctx, client.Credentials{}, 40); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("no header: got %v, want ErrUnauthorized", err)
	}
}

func TestAnswersThatAreNotTheAPIs(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"an HTML 200", 200, "<html>hello</html>", client.ErrProtocol},
		{"a 200 like without liked", 200, `{"ok":true}`, client.ErrProtocol},
		{"a 200 like answering liked false", 200, `{"liked":false}`, client.ErrProtocol},
		{"a 502 from a proxy", 502, "Bad Gateway", nil},
		{"a 503 without Retry-After", 503, "", client.ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c := newClient(t, srv.URL)
			err := c.Like(context.Background(), client.Bearer("t"), 1)
			if err == nil {
				t.Fatalf("got nil, want an error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var e *client.Error
			if tc.status == 502 && (!errors.As(err, &e) || e.Status != 502) {
				t.Fatalf("got %v, want an *Error with status 502", err)
			}
			if tc.status == 503 {
				if d, ok := client.RetryAfter(err); !ok || d != time.Second {
					t.Fatalf("got %v, %v, want the 1s fallback", d, ok)
				}
			}
		})
	}
	t.Run("a count that is not a non-negative integer", func(t *testing.T) {
		for _, body := range []string{`{"count":-1}`, `{"count":1.5}`, `{"count":"7"}`, `{}`, `{"count":99999999999999999999}`} {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }))
			c := newClient(t, srv.URL)
			_, err := c.Count(context.Background(), 1)
			srv.Close()
			if !errors.Is(err, client.ErrProtocol) {
				t.Fatalf("%s: got %v, want ErrProtocol", body, err)
			}
		}
	})
}

func TestConfigValidate(t *testing.T) {
	mod := func(f func(*client.Config)) client.Config {
		c := client.DefaultConfig()
		f(&c)
		return c
	}
	if err := client.DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: got %v, want nil", err)
	}
	bad := map[string]client.Config{
		"no scheme":         mod(func(c *client.Config) { c.BaseURL = "127.0.0.1:8080" }),
		"ftp":               mod(func(c *client.Config) { c.BaseURL = "ftp://127.0.0.1" }),
		"no host":           mod(func(c *client.Config) { c.BaseURL = "http://" }),
		"trailing slash":    mod(func(c *client.Config) { c.BaseURL = "http://127.0.0.1:8080/" }),
		"query":             mod(func(c *client.Config) { c.BaseURL = "http://127.0.0.1:8080?x=1" }),
		"zero timeout":      mod(func(c *client.Config) { c.Timeout = 0 }),
		"no idle conns":     mod(func(c *client.Config) { c.MaxIdleConns = 0 }),
		"zero idle timeout": mod(func(c *client.Config) { c.IdleConnTimeout = 0 }),
	}
	for name, cfg := range bad {
		t.Run(name+" is refused", func(t *testing.T) {
			err := cfg.Validate()
			if !errors.Is(err, client.ErrInvalidConfig) {
				t.Fatalf("got %v, want ErrInvalidConfig", err)
			}
			if _, err := client.New(cfg); err == nil {
				t.Fatalf("New: got nil, want an error")
			}
		})
	}
	if err := mod(func(c *client.Config) { c.BaseURL = "https://likes.local:8443/api" }).Validate(); err != nil {
		t.Fatalf("https with a prefix: got %v, want nil", err)
	}
}

// TestOverloadErrorNamesTheAnswer checks the error text an application logs.
func TestOverloadErrorNamesTheAnswer(t *testing.T) {
	e := &client.OverloadError{Code: "overloaded", Message: "too many pending writes; retry later", RetryAfter: 2 * time.Second}
	if got, want := e.Error(), "likes: 503 overloaded: too many pending writes; retry later (retry after 2s)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got, want := (&client.Error{Status: 409, Code: "already_liked"}).Error(), "likes: 409 already_liked"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
