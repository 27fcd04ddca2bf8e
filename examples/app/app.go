package main

import (
	"embed"
	"encoding/json"
	"errors"
	"hash/fnv"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/likes-sidecar/likes/auth"
	"github.com/likes-sidecar/likes/client"
)

//go:embed page.html login.html
var templates embed.FS

const (
	tokenCookie = "likes_demo_token"
	nameCookie  = "likes_demo_name"
	// csrfHeader must accompany like and unlike calls: a cross-site form
	// cannot set it, and a cross-site fetch that does needs a CORS
	// permission this app never grants. (The cookies are SameSite=Lax too.)
	csrfHeader = "X-Likes-Demo"
)

// appConfig is what the app needs.
type appConfig struct {
	Likes  *client.Client
	Secret string        // HS256 secret the demo login signs with
	TTL    time.Duration // token lifetime (default 12h)
}

// app serves the pages and the small JSON API the page's script calls.
// Safe for concurrent use.
type app struct {
	cfg   appConfig
	likes *client.Client
	auth  *auth.Authenticator // verifies the session cookie's token
	page  *template.Template
	login *template.Template
	mux   *http.ServeMux

	// liked remembers, per user, the posts this app saw them like: the
	// button's initial state. A real app knows it from its own data (the
	// likes table `likes consume` writes); the sidecar's API has no "did I
	// like it" read because the hot path must not need one.
	mu    sync.Mutex
	liked map[[2]int64]bool
}

func newApp(cfg appConfig) (*app, error) {
	if cfg.Likes == nil {
		return nil, errors.New("app: a likes client is required")
	}
	if len(cfg.Secret) < auth.MinSecretLen {
		return nil, errors.New("app: the JWT secret is too short for auth.Sign")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 12 * time.Hour
	}
	a := &app{cfg: cfg, likes: cfg.Likes, liked: make(map[[2]int64]bool), mux: http.NewServeMux()}
	ac := auth.DefaultConfig()
	ac.JWTSecret = cfg.Secret
	var err error
	if a.auth, err = auth.New(ac, time.Now); err != nil {
		return nil, err
	}
	if a.page, err = template.ParseFS(templates, "page.html"); err != nil {
		return nil, err
	}
	if a.login, err = template.ParseFS(templates, "login.html"); err != nil {
		return nil, err
	}
	a.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/posts/1", http.StatusSeeOther)
	})
	a.mux.HandleFunc("GET /login", a.loginForm)
	a.mux.HandleFunc("POST /login", a.doLogin)
	a.mux.HandleFunc("POST /logout", a.doLogout)
	a.mux.HandleFunc("GET /posts/{post}", a.postPage)
	a.mux.HandleFunc("GET /api/posts/{post}/count", a.apiCount)
	a.mux.HandleFunc("POST /api/posts/{post}/like", a.apiLike)
	a.mux.HandleFunc("DELETE /api/posts/{post}/like", a.apiLike)
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	return a, nil
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	a.mux.ServeHTTP(w, r)
}

// userID derives the demo user id from a name: stable, positive, below 2^53
// so that JavaScript shows it exactly.
func userID(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(name)))
	return int64(h.Sum64()&(1<<53-1)) | 1
}

// session is the signed-in user, if any.
type session struct {
	Name  string // as typed at login (display only)
	ID    int64  // from the verified token
	token string
}

// session verifies the token cookie (a real app verifies its session the
// same way); an expired or forged one means signed out.
func (a *app) session(r *http.Request) (session, bool) {
	tc, err := r.Cookie(tokenCookie)
	if err != nil || tc.Value == "" {
		return session{}, false
	}
	id, err := a.auth.Authenticate("Bearer "+tc.Value, "")
	if err != nil {
		return session{}, false
	}
	s := session{ID: id, token: tc.Value}
	if nc, err := r.Cookie(nameCookie); err == nil {
		s.Name = nc.Value
	}
	return s, true
}

func validName(n string) bool {
	if n == "" || len(n) > 32 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (a *app) loginForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, a.login, map[string]any{"Next": safeNext(r.URL.Query().Get("next"))})
}

func (a *app) doLogin(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.FormValue("user"))
	next := safeNext(r.FormValue("next"))
	if !validName(name) {
		w.WriteHeader(http.StatusBadRequest)
		a.render(w, a.login, map[string]any{"Next": next, "Error": "a name is 1-32 letters, digits, - or _"})
		return
	}
	tok, err := auth.Sign(a.cfg.Secret, userID(name), a.cfg.TTL, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	maxAge := int(a.cfg.TTL / time.Second)
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: tok, Path: "/", MaxAge: maxAge, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.SetCookie(w, &http.Cookie{Name: nameCookie, Value: name, Path: "/", MaxAge: maxAge, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (a *app) doLogout(w http.ResponseWriter, r *http.Request) {
	for _, n := range []string{tokenCookie, nameCookie} {
		http.SetCookie(w, &http.Cookie{Name: n, Value: "", Path: "/", MaxAge: -1})
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps redirects on this site.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.ContainsAny(n, "\\\r\n") {
		return "/posts/1"
	}
	return n
}

func postID(r *http.Request) (int64, bool) {
	n, err := strconv.ParseInt(r.PathValue("post"), 10, 64)
	return n, err == nil && n > 0
}

func (a *app) postPage(w http.ResponseWriter, r *http.Request) {
	post, ok := postID(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	s, signedIn := a.session(r)
	if !signedIn {
		http.Redirect(w, r, "/login?next="+r.URL.Path, http.StatusSeeOther)
		return
	}
	n, err := a.likes.Count(r.Context(), post)
	countText := strconv.FormatInt(n, 10)
	if err != nil {
		countText = "–" // the page still works; the script retries
	}
	a.mu.Lock()
	liked := a.liked[[2]int64{s.ID, post}]
	a.mu.Unlock()
	a.render(w, a.page, map[string]any{"Post": post, "Count": countText, "Liked": liked, "User": s})
}

func (a *app) render(w http.ResponseWriter, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'")
	if err := t.Execute(w, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// apiAnswer is what the page's script receives.
type apiAnswer struct {
	Liked      *bool  `json:"liked,omitempty"`
	Count      *int64 `json:"count,omitempty"`
	Error      string `json:"error,omitempty"`
	Message    string `json:"message,omitempty"`
	RetryAfter int    `json:"retry_after,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v apiAnswer) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if v.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(v.RetryAfter))
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// likesError maps a client error to the page's answer.
func likesError(w http.ResponseWriter, err error) {
	if d, ok := client.RetryAfter(err); ok {
		secs := int((d + time.Second - 1) / time.Second)
		writeJSON(w, http.StatusServiceUnavailable, apiAnswer{Error: "busy", Message: "Likes are busy right now; try again in a moment.", RetryAfter: max(secs, 1)})
		return
	}
	switch {
	case errors.Is(err, client.ErrUnauthorized):
		writeJSON(w, http.StatusUnauthorized, apiAnswer{Error: "signed_out", Message: "Your session expired; sign in again."})
	case errors.Is(err, client.ErrInvalidPost):
		writeJSON(w, http.StatusNotFound, apiAnswer{Error: "no_such_post", Message: "No such post."})
	default:
		writeJSON(w, http.StatusBadGateway, apiAnswer{Error: "likes_unreachable", Message: "Likes are unavailable right now."})
	}
}

func (a *app) apiCount(w http.ResponseWriter, r *http.Request) {
	post, ok := postID(r)
	if !ok {
		likesError(w, client.ErrInvalidPost)
		return
	}
	n, err := a.likes.Count(r.Context(), post)
	if err != nil {
		likesError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiAnswer{Count: &n})
}

// apiLike is POST (like) or DELETE (unlike). A like that was already there
// and an unlike of nothing are successes for the button: the state the user
// asked for holds.
func (a *app) apiLike(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(csrfHeader) != "1" {
		writeJSON(w, http.StatusForbidden, apiAnswer{Error: "forbidden", Message: "missing " + csrfHeader + " header"})
		return
	}
	post, ok := postID(r)
	if !ok {
		likesError(w, client.ErrInvalidPost)
		return
	}
	s, signedIn := a.session(r)
	if !signedIn {
		writeJSON(w, http.StatusUnauthorized, apiAnswer{Error: "signed_out", Message: "Sign in to like posts."})
		return
	}
	cred := client.Bearer(s.token)
	want := r.Method == http.MethodPost
	var err error
	if want {
		err = a.likes.Like(r.Context(), cred, post)
		if errors.Is(err, client.ErrAlreadyLiked) {
			err = nil
		}
	} else {
		err = a.likes.Unlike(r.Context(), cred, post)
		if errors.Is(err, client.ErrNotLiked) {
			err = nil
		}
	}
	if err != nil {
		likesError(w, err)
		return
	}
	a.mu.Lock()
	if want {
		a.liked[[2]int64{s.ID, post}] = true
	} else {
		delete(a.liked, [2]int64{s.ID, post})
	}
	a.mu.Unlock()
	ans := apiAnswer{Liked: &want}
	// Counted at once through the same sidecar (read-your-writes).
	if n, err := a.likes.Count(r.Context(), post); err == nil {
		ans.Count = &n
	}
	writeJSON(w, http.StatusOK, ans)
}
