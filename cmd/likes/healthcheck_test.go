package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/likes-sidecar/likes/config"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// healthcheck runs `likes healthcheck args...` in-process.
func healthcheck(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs(append([]string{"healthcheck"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestHealthcheck(t *testing.T) {
	var status = http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().String()[strings.LastIndexByte(srv.Listener.Addr().String(), ':'):]

	t.Run("a 200 answer is success", func(t *testing.T) {
		out, err := healthcheck(t, "--url", srv.URL+"/healthz")
		if err != nil || !strings.HasPrefix(out, "ok: ") {
			t.Fatalf("got %q, %v, want ok and nil", out, err)
		}
	})
	t.Run("a 503 answer is failure", func(t *testing.T) {
		status = http.StatusServiceUnavailable
		defer func() { status = http.StatusOK }()
		_, err := healthcheck(t, "--url", srv.URL+"/healthz")
		if err == nil || !strings.Contains(err.Error(), "503") {
			t.Fatalf("got %v, want an error naming 503", err)
		}
	})
	t.Run("nobody listening is failure", func(t *testing.T) {
		addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
		if _, err := healthcheck(t, "--url", "http://"+addr+"/healthz", "--timeout", "500ms"); err == nil {
			t.Fatalf("got nil, want an error")
		}
	})
	t.Run("without --url it probes /healthz on admin.listen from the environment", func(t *testing.T) {
		t.Setenv("LIKES_ADMIN_LISTEN", "0.0.0.0"+port)
		t.Setenv("LIKES_HTTP_LISTEN", "127.0.0.1:1") // must not be used
		out, err := healthcheck(t)
		if err != nil || !strings.Contains(out, "http://127.0.0.1"+port+"/healthz") {
			t.Fatalf("got %q, %v, want a probe of 127.0.0.1%s/healthz", out, err, port)
		}
	})
	t.Run("without admin.listen it probes http.listen from the flag", func(t *testing.T) {
		out, err := healthcheck(t, "--listen", ":"+port[1:])
		if err != nil || !strings.Contains(out, "http://127.0.0.1"+port+"/healthz") {
			t.Fatalf("got %q, %v, want a probe of 127.0.0.1%s/healthz", out, err, port)
		}
	})
}

func TestHealthURL(t *testing.T) {
	cases := []struct{ admin, api, want string }{
		{"", "127.0.0.1:8080", "http://127.0.0.1:8080/healthz"},
		{"0.0.0.0:9090", "0.0.0.0:8080", "http://127.0.0.1:9090/healthz"},
		{"[::]:9090", "", "http://127.0.0.1:9090/healthz"},
		{"", ":8080", "http://127.0.0.1:8080/healthz"},
		{"10.1.2.3:9090", "", "http://10.1.2.3:9090/healthz"},
		{"[::1]:9090", "", "http://[::1]:9090/healthz"},
	}
	for _, c := range cases {
		v, err := config.Load(nil, "")
		if err != nil {
			t.Fatal(err)
		}
		v.Set("admin.listen", c.admin)
		v.Set("http.listen", c.api)
		if got, err := healthURL(v); err != nil || got != c.want {
			t.Errorf("admin %q, api %q: got %q, %v, want %q", c.admin, c.api, got, err, c.want)
		}
	}
	v, _ := config.Load(nil, "")
	v.Set("http.listen", "nonsense")
	if _, err := healthURL(v); err == nil || !strings.Contains(err.Error(), "http.listen") {
		t.Fatalf("got %v, want an error naming http.listen", err)
	}
}
