package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/likes-sidecar/likes/client"
	"github.com/likes-sidecar/likes/internal/memsidecar"
)

// startApp serves the app in front of a sidecar at likesURL.
func startApp(t *testing.T, likesURL, secret string) *httptest.Server {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.BaseURL = likesURL
	likes, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(likes.Close)
	a, err := newApp(appConfig{Likes: likes, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv
}

// browser is an HTTP client with a cookie jar that does not follow redirects.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type answer struct {
	status int
	header http.Header
	body   string
	json   apiAnswer
}

func call(t *testing.T, c *http.Client, method, u string, header map[string]string, form url.Values) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &a.json); err != nil {
			t.Fatalf("%s %s: %v: %s", method, u, err, b)
		}
	}
	return a
}

func login(t *testing.T, c *http.Client, base, name string) {
	t.Helper()
	a := call(t, c, "POST", base+"/login", nil, url.Values{"user": {name}, "next": {"/posts/3"}})
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/posts/3" {
		t.Fatalf("login: got %d to %q, want 303 to /posts/3", a.status, a.header.Get("Location"))
	}
}

var demo = map[string]string{csrfHeader: "1"}

func TestApp(t *testing.T) {
	s, err := memsidecar.Start(memsidecar.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	app := startApp(t, s.URL, memsidecar.Secret)
	alice, bob := browser(t), browser(t)

	t.Run("the page needs a login and says who is signed in", func(t *testing.T) {
		a := call(t, alice, "GET", app.URL+"/posts/3", nil, nil)
		if a.status != http.StatusSeeOther || a.header.Get("Location") != "/login?next=/posts/3" {
			t.Fatalf("got %d to %q, want 303 to the login", a.status, a.header.Get("Location"))
		}
		if a := call(t, alice, "POST", app.URL+"/login", nil, url.Values{"user": {"<script>"}}); a.status != http.StatusBadRequest {
			t.Fatalf("bad name: got %d, want 400", a.status)
		}
		login(t, alice, app.URL, "alice")
		a = call(t, alice, "GET", app.URL+"/posts/3", nil, nil)
		if a.status != 200 || !strings.Contains(a.body, `id="who">alice<`) || !strings.Contains(a.body, "♡ like") || !strings.Contains(a.body, `<span id="count">0</span>`) {
			t.Fatalf("got %d:\n%s\nwant the page of post 3 for alice with count 0 and a like button", a.status, a.body)
		}
	})
	t.Run("like and unlike go through the sidecar with the user's token", func(t *testing.T) {
		if a := call(t, alice, "POST", app.URL+"/api/posts/3/like", nil, nil); a.status != http.StatusForbidden {
			t.Fatalf("without the CSRF header: got %d, want 403", a.status)
		}
		a := call(t, alice, "POST", app.URL+"/api/posts/3/like", demo, nil)
		if a.status != 200 || a.json.Liked == nil || !*a.json.Liked || a.json.Count == nil || *a.json.Count != 1 {
			t.Fatalf("like: got %d %s, want liked and count 1", a.status, a.body)
		}
		if !s.Liked(3, userID("alice")) {
			t.Fatalf("got no like of alice's user id in the sidecar's log, want one")
		}
		a = call(t, alice, "POST", app.URL+"/api/posts/3/like", demo, nil)
		if a.status != 200 || !*a.json.Liked || *a.json.Count != 1 {
			t.Fatalf("second like: got %d %s, want still liked and count 1", a.status, a.body)
		}
		if p := call(t, alice, "GET", app.URL+"/posts/3", nil, nil); !strings.Contains(p.body, "♥ liked") {
			t.Fatalf("page after a like: want the button liked:\n%s", p.body)
		}
		login(t, bob, app.URL, "bob")
		if a := call(t, bob, "POST", app.URL+"/api/posts/3/like", demo, nil); *a.json.Count != 2 {
			t.Fatalf("bob's like: got %s, want count 2", a.body)
		}
		if a := call(t, alice, "GET", app.URL+"/api/posts/3/count", nil, nil); a.status != 200 || *a.json.Count != 2 {
			t.Fatalf("count: got %d %s, want 2", a.status, a.body)
		}
		a = call(t, alice, "DELETE", app.URL+"/api/posts/3/like", demo, nil)
		if a.status != 200 || *a.json.Liked || *a.json.Count != 1 {
			t.Fatalf("unlike: got %d %s, want not liked and count 1", a.status, a.body)
		}
		if a := call(t, alice, "DELETE", app.URL+"/api/posts/3/like", demo, nil); a.status != 200 || *a.json.Liked {
			t.Fatalf("second unlike: got %d %s, want not liked", a.status, a.body)
		}
	})
	t.Run("an overloaded sidecar is a 503 with Retry-After and a message", func(t *testing.T) {
		s.FailLog(true)
		defer s.FailLog(false)
		a := call(t, alice, "POST", app.URL+"/api/posts/3/like", demo, nil)
		if a.status != 503 || a.header.Get("Retry-After") != "1" || a.json.Message == "" {
			t.Fatalf("got %d %s (Retry-After %q), want 503 with Retry-After 1 and a message", a.status, a.body, a.header.Get("Retry-After"))
		}
	})
	t.Run("a forged session is signed out", func(t *testing.T) {
		mallory := browser(t)
		u, _ := url.Parse(app.URL)
		mallory.Jar.SetCookies(u, []*http.Cookie{{Name: tokenCookie, Value: s.Token(userID("alice")) + "x"}, {Name: nameCookie, Value: "alice"}})
		if a := call(t, mallory, "POST", app.URL+"/api/posts/3/like", demo, nil); a.status != http.StatusUnauthorized {
			t.Fatalf("got %d %s, want 401", a.status, a.body)
		}
		if a := call(t, mallory, "GET", app.URL+"/posts/3", nil, nil); a.status != http.StatusSeeOther {
			t.Fatalf("page: got %d, want a redirect to the login", a.status)
		}
	})
	t.Run("bad post ids and the health check", func(t *testing.T) {
		if a := call(t, alice, "GET", app.URL+"/api/posts/0/count", nil, nil); a.status != http.StatusNotFound {
			t.Fatalf("post 0: got %d, want 404", a.status)
		}
		if a := call(t, alice, "GET", app.URL+"/posts/abc", nil, nil); a.status != http.StatusNotFound {
			t.Fatalf("post abc: got %d, want 404", a.status)
		}
		if a := call(t, alice, "GET", app.URL+"/healthz", nil, nil); a.status != 200 {
			t.Fatalf("healthz: got %d, want 200", a.status)
		}
	})
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/posts/7": "/posts/7", "": "/posts/1", "//evil.example": "/posts/1",
		"https://evil.example": "/posts/1", "/\\evil": "/posts/1", "/a\r\nb": "/posts/1",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestUserIDIsStablePositiveAndExactInJavaScript(t *testing.T) {
	for _, n := range []string{"alice", "bob", "a", strings.Repeat("z", 32)} {
		id := userID(n)
		if id <= 0 || id >= 1<<53 || id != userID(strings.ToUpper(n)) {
			t.Fatalf("userID(%q) = %d: want a stable id in (0, 2^53)", n, id)
		}
	}
	if userID("alice") == userID("bob") {
		t.Fatalf("alice and bob got the same id")
	}
}
