package envoy

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/likes-sidecar/likes/proxy"
)

// httpAnswer sends the request to the API's own HTTP server.
func httpAnswer(t *testing.T, base, method, path, authorization, userHeader string) (status int, body string, h http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if userHeader != "" {
		req.Header.Set("X-User-Id", userHeader)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(raw), res.Header
}

// serveHTTP serves api over net/http on a loopback port until cleanup.
func serveHTTP(t testing.TB, api http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestAnswersAreTheHTTPAnswers runs the same request sequence against two
// identical APIs, one through net/http and one through ext_proc, and wants
// the same status, body and headers from both, in both header encodings.
func TestAnswersAreTheHTTPAnswers(t *testing.T) {
	tok7 := "Bearer " + token(t, 7)
	steps := []struct {
		name                       string
		method, path, auth, userID string
		wantStatus                 int
	}{
		{"a like is accepted", "POST", likePath(1), tok7, "", 200},
		{"the same like again is a conflict", "POST", likePath(1), tok7, "", 409},
		{"the count includes the like and is cacheable", "GET", countPath(1), "", "", 200},
		{"a HEAD count gives the count's headers", "HEAD", countPath(1), "", "", 200},
		{"a count ignores the query string", "GET", countPath(1) + "?fresh=1", "", "", 200},
		{"an unlike is accepted", "DELETE", likePath(1), tok7, "", 200},
		{"an unlike of an unliked post is not found", "DELETE", likePath(1), tok7, "", 404},
		{"a like without a token is unauthorized", "POST", likePath(1), "", "", 401},
		{"a like with a bad token is unauthorized", "POST", likePath(1), "Bearer not.a.jwt", "", 401},
		{"a like with another scheme is unauthorized", "POST", likePath(1), "Basic dXNlcjpwYXNz", "", 401},
		{"a bad post id is a bad request", "POST", "/posts/01/likes", tok7, "", 400},
		{"a huge post id is a bad request", "GET", "/posts/99999999999999999999/likes/count", "", "", 400},
		{"a wrong method on likes lists the allowed ones", "PUT", likePath(1), tok7, "", 405},
		{"a wrong method on count lists the allowed ones", "POST", countPath(1), tok7, "", 405},
		{"an overloaded write is 503 with Retry-After", "POST", likePath(failPost), tok7, "", 503},
	}
	for _, raw := range []bool{true, false} {
		name := "header values in value"
		if raw {
			name = "header values in raw_value"
		}
		t.Run(name, func(t *testing.T) {
			base := serveHTTP(t, newFakeAPI(t, apiOptions{}))
			c := dial(t, startServer(t, newTestServer(t, newFakeAPI(t, apiOptions{}), nil, nil)))
			for _, s := range steps {
				t.Run(s.name, func(t *testing.T) {
					status, body, h := httpAnswer(t, base, s.method, s.path, s.auth, s.userID)
					if status != s.wantStatus {
						t.Fatalf("HTTP: got %d %s, want %d", status, body, s.wantStatus)
					}
					a := mustExchange(t, c, request(raw, s.method, s.path, s.auth))
					if a.continued {
						t.Fatalf("ext_proc: got continue, want an immediate %d", status)
					}
					if a.status != status {
						t.Errorf("status: got %d, want %d (HTTP)", a.status, status)
					}
					if s.method == http.MethodHead {
						// net/http sends no body for HEAD; Envoy drops the
						// local reply's body for HEAD and keeps its length.
						if got, want := strconv.Itoa(len(a.body)), h.Get("Content-Length"); got != want {
							t.Errorf("HEAD body length: got %s, want %s (HTTP Content-Length)", got, want)
						}
					} else if a.body != body {
						t.Errorf("body: got %s, want %s (HTTP)", a.body, body)
					}
					want := 0
					for _, k := range []string{"Content-Type", "Cache-Control", "Retry-After", "Allow"} {
						if h.Get(k) != "" {
							want++
						}
						if got, want := a.headers[lower(k)], h.Get(k); got != want {
							t.Errorf("header %s: got %q, want %q (HTTP)", k, got, want)
						}
					}
					if len(a.headers) != want {
						t.Errorf("got headers %v, want %d of them as HTTP sends", a.headers, want)
					}
					if a.raw != raw {
						t.Errorf("header values in raw_value: got %v, want %v (as Envoy sent them)", a.raw, raw)
					}
					if a.details != details {
						t.Errorf("details: got %q, want %q", a.details, details)
					}
				})
			}
		})
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func TestOtherRequestsContinueUntouched(t *testing.T) {
	c := dial(t, startServer(t, newTestServer(t, newFakeAPI(t, apiOptions{prefix: "/api"}), nil, nil)))
	tok := "Bearer " + token(t, 7)
	for _, path := range []string{"/", "/healthz", "/posts/1", "/posts/1/comments", "/posts/1/likes", "/api/posts/1/likess", "/api/posts/1/likes/count/x", "/apiposts/1/likes"} {
		t.Run("path "+path+" continues", func(t *testing.T) {
			for _, method := range []string{"GET", "POST"} {
				if a := mustExchange(t, c, request(true, method, path, tok)); !a.continued {
					t.Fatalf("%s %s: got an immediate %d %s, want continue", method, path, a.status, a.body)
				}
			}
		})
	}
	t.Run("the prefixed route is answered", func(t *testing.T) {
		if a := mustExchange(t, c, request(true, "POST", "/api"+likePath(1), tok)); a.status != 200 {
			t.Fatalf("got continue=%v %d %s, want 200", a.continued, a.status, a.body)
		}
	})
	t.Run("response headers after a continue get continue", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := c.Process(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(request(true, "GET", "/index.html", "")); err != nil {
			t.Fatal(err)
		}
		if r, err := st.Recv(); err != nil || r.GetRequestHeaders() == nil {
			t.Fatalf("got %v, %v, want a request headers continue", r, err)
		}
		if err := st.Send(responseHeadersMsg()); err != nil {
			t.Fatal(err)
		}
		r, err := st.Recv()
		if err != nil || r.GetResponseHeaders() == nil || r.GetResponseHeaders().GetResponse().GetStatus() != 0 {
			t.Fatalf("got %v, %v, want a response headers continue", r, err)
		}
		st.CloseSend()
		if _, err := st.Recv(); err != io.EOF {
			t.Fatalf("got %v, want io.EOF after the client half-closed", err)
		}
	})
}

func TestHeaderModeTakesTheUserFromTheConfiguredHeader(t *testing.T) {
	api := newFakeAPI(t, apiOptions{headerAuth: true})
	cfg := DefaultConfig()
	cfg.UserHeader = "X-User-Id" // matched case-insensitively
	c := dial(t, startServer(t, newTestServer(t, api, &cfg, nil)))
	tok := "Bearer " + token(t, 7)
	t.Run("the header's user likes", func(t *testing.T) {
		a := mustExchange(t, c, request(true, "POST", likePath(2), tok, "x-user-id", "42"))
		if want := `{"liked":true,"post_id":2,"user_id":42}`; a.status != 200 || a.body != want {
			t.Fatalf("got %d %s, want 200 %s", a.status, a.body, want)
		}
	})
	t.Run("the first of two user headers counts", func(t *testing.T) {
		a := mustExchange(t, c, request(false, "POST", likePath(3), "", "x-user-id", "43", "x-user-id", "44"))
		if want := `{"liked":true,"post_id":3,"user_id":43}`; a.status != 200 || a.body != want {
			t.Fatalf("got %d %s, want 200 %s", a.status, a.body, want)
		}
	})
	t.Run("a bearer token alone is not enough", func(t *testing.T) {
		if a := mustExchange(t, c, request(true, "POST", likePath(2), tok)); a.status != 401 {
			t.Fatalf("got %d %s, want 401", a.status, a.body)
		}
	})
	t.Run("a bad user id is unauthorized", func(t *testing.T) {
		if a := mustExchange(t, c, request(true, "POST", likePath(2), "", "x-user-id", "-1")); a.status != 401 {
			t.Fatalf("got %d %s, want 401", a.status, a.body)
		}
	})
}

// TestHeaderModeMatchesHTTP checks that proxy.API's own header mode agrees: the
// HTTP server reads Deps.UserHeader, the ext_proc server Config.UserHeader.
func TestHeaderModeMatchesHTTP(t *testing.T) {
	base := serveHTTP(t, newFakeAPI(t, apiOptions{headerAuth: true}))
	cfg := DefaultConfig()
	cfg.UserHeader = "x-user-id"
	c := dial(t, startServer(t, newTestServer(t, newFakeAPI(t, apiOptions{headerAuth: true}), &cfg, nil)))
	for _, user := range []string{"5", "", "abc"} {
		status, body, _ := httpAnswer(t, base, "POST", likePath(9), "", user)
		extra := []string{}
		if user != "" {
			extra = []string{"x-user-id", user}
		}
		a := mustExchange(t, c, request(true, "POST", likePath(9), "", extra...))
		if a.status != status || a.body != body {
			t.Errorf("user header %q: got %d %s, want %d %s (HTTP)", user, a.status, a.body, status, body)
		}
	}
}

var _ API = (*proxy.API)(nil)

// panicAPI is an API whose deeper layers panic on a like (a bug in the
// authenticator, the duplicate check or the coalescer).
type panicAPI struct{ staticAPI }

func (panicAPI) Do(context.Context, *proxy.Request, *proxy.Response) {
	panic("a deeper layer panicked")
}

// TestAPanicInTheAPIEndsOnlyItsStream: over HTTP, net/http recovers a panic
// of the handler and the sidecar carries on (proxy.API.Do relies on it: it
// releases its admission slot on a panic). gRPC does not recover panics of
// a handler, so without a recover in Process one panicking like through
// ext_proc kills the whole sidecar, HTTP API included. The stream must end
// with an Internal status instead, and the server must keep serving.
func TestAPanicInTheAPIEndsOnlyItsStream(t *testing.T) {
	s := newTestServer(t, panicAPI{}, nil, NewMetrics(nil))
	fs := newFakeStream(true, request(true, "POST", likePath(1), ""))
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("Process let the panic through (%v): under gRPC that ends the process", p)
			}
		}()
		err = s.Process(fs)
	}()
	if st, _ := status.FromError(err); st.Code() != codes.Internal {
		t.Fatalf("got %v, want an Internal status", err)
	}
	if len(fs.sent) != 0 {
		t.Fatalf("sent %v, want nothing", fs.sent)
	}
	// The server's pool and its other streams are unaffected.
	s.api = staticAPI{}
	fs = newFakeStream(true, request(true, "POST", likePath(1), ""))
	if err := s.Process(fs); err != nil || strings.Join(fs.sent, ",") != "immediate" {
		t.Fatalf("next stream: got %v, sent %v; want an immediate answer", err, fs.sent)
	}
}
