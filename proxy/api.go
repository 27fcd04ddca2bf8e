package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/likes-sidecar/likes/admission"
	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/dedupcache"
	"github.com/likes-sidecar/likes/event"
)

// Config tunes the API. Start from [DefaultConfig].
type Config struct {
	// WriteTimeout is the deadline of a like or unlike (write.timeout).
	WriteTimeout time.Duration
	// CacheTTL is how long a count read from Redis is served (read.cache_ttl).
	CacheTTL time.Duration
	// CacheMax bounds the count cache (read.cache_max posts).
	CacheMax int
	// ReadTimeout bounds one count read from Redis, re-seed included (read.timeout).
	ReadTimeout time.Duration
	// RetryAfter is the Retry-After value of 503 answers (http.retry_after).
	RetryAfter time.Duration
	// PathPrefix is put before /posts/… (http.path_prefix), e.g. "/api".
	PathPrefix string
	// Counts is the Redis count layout.
	Counts counts.Config
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		WriteTimeout: 200 * time.Millisecond,
		CacheTTL:     time.Second,
		CacheMax:     100_000,
		ReadTimeout:  time.Second,
		RetryAfter:   time.Second,
		Counts:       counts.DefaultConfig(),
	}
}

// Validate reports the first invalid field, named by its configuration key.
func (c Config) Validate() error {
	switch {
	case c.WriteTimeout < time.Millisecond:
		return fmt.Errorf("write.timeout: must be at least 1ms, got %s", c.WriteTimeout)
	case c.CacheTTL < 0 || c.CacheTTL > 5*time.Second:
		return fmt.Errorf("read.cache_ttl: must be between 0 and 5s (staleness bound), got %s", c.CacheTTL)
	case c.CacheMax < 1:
		return errors.New("read.cache_max: must be at least 1")
	case c.ReadTimeout < time.Millisecond:
		return fmt.Errorf("read.timeout: must be at least 1ms, got %s", c.ReadTimeout)
	case c.RetryAfter < time.Second:
		return fmt.Errorf("http.retry_after: must be at least 1s, got %s", c.RetryAfter)
	case c.PathPrefix != "" && (c.PathPrefix[0] != '/' || c.PathPrefix[len(c.PathPrefix)-1] == '/'):
		return fmt.Errorf("http.path_prefix: must start with / and not end with /, got %q", c.PathPrefix)
	}
	return c.Counts.Validate()
}

// Authenticator says who is calling. auth.Authenticator is one.
type Authenticator interface {
	Authenticate(authorization, userHeader string) (int64, error)
}

// Deduper is the duplicate check. dedupcache.Checker is one.
type Deduper interface {
	Begin(ctx context.Context, op event.Op, post, user int64) (dedupcache.Ticket, error)
	Finish(t dedupcache.Ticket, ok bool)
}

// Writer publishes accepted events and knows this sidecar's unwritten
// counter deltas. coalescer.Coalescer is one.
type Writer interface {
	// Submit publishes op on (post, user); unfiltered marks a like that
	// the shared duplicate filter could not record (dedupcache.Ticket).
	Submit(ctx context.Context, op event.Op, post, user int64, unfiltered bool) error
	Totals(post int64) (acked, flushed int64)
}

// CountSource reads a post's count from Redis and re-seeds a missing base.
type CountSource interface {
	Read(ctx context.Context, post int64, now time.Time) (counts.Snapshot, error)
	Reseed(ctx context.Context, post int64, now time.Time) error
}

// Deps are the API's collaborators.
type Deps struct {
	Auth    Authenticator
	Dedup   Deduper
	Writer  Writer
	Counts  CountSource
	Now     func() time.Time
	Logger  *zap.Logger
	Metrics *Metrics
	// Admission, if not nil, limits the writes in flight: a like or unlike
	// it refuses is answered 503 overloaded before authentication, and
	// nothing is written. Reads are not limited.
	Admission *admission.Limiter
	// UserHeader, if set, is read from HTTP requests into Request.UserHeader
	// (auth.mode=header).
	UserHeader string
}

// API answers like, unlike and count requests. Create with [New]. Safe for
// concurrent use.
type API struct {
	cfg      Config
	deps     Deps
	now      func() time.Time
	log      *zap.Logger
	cache    *countCache
	retry    int
	draining atomic.Bool
	// userHeader is the header carrying the user id in auth.mode=header.
	userHeader string
}

// New validates cfg and builds the API.
func New(cfg Config, deps Deps) (*API, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Auth == nil || deps.Dedup == nil || deps.Writer == nil || deps.Counts == nil {
		return nil, errors.New("proxy: Deps.Auth, Dedup, Writer and Counts are required")
	}
	a := &API{cfg: cfg, deps: deps, now: deps.Now, log: deps.Logger, retry: int((cfg.RetryAfter + time.Second - 1) / time.Second)}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	a.cache = newCountCache(cfg.CacheMax)
	a.userHeader = deps.UserHeader
	if deps.Metrics != nil && deps.Admission != nil {
		deps.Metrics.admission.Store(deps.Admission)
	}
	return a, nil
}

// SetDraining makes writes answer 503 shutting_down (reads still work).
func (a *API) SetDraining(v bool) { a.draining.Store(v) }

// Draining reports whether SetDraining(true) was called.
func (a *API) Draining() bool { return a.draining.Load() }

// Request is a transport-neutral like API request.
type Request struct {
	Method        string
	Path          string // escaped path; a query string is ignored
	Authorization string // the Authorization header value
	UserHeader    string // the trusted user-id header value (auth.mode=header)
}

// Response is the answer to a [Request]. Headers other than Content-Type
// (always application/json) are set only when non-empty.
type Response struct {
	Status       int
	Body         []byte
	CacheControl string
	RetryAfter   string
	Allow        string
}

// Reset clears r for reuse, keeping the body's capacity.
func (r *Response) Reset() { *r = Response{Body: r.Body[:0]} }

// IsLikeRoute reports whether path (escaped, query allowed) is one of the
// API's routes, valid id or not. Other paths are not the API's business.
func (a *API) IsLikeRoute(path string) bool {
	rt, _ := parsePath(a.cfg.PathPrefix, path)
	return rt != routeNone
}

// Do answers req into resp. It never panics on any input and writes nothing
// for a request it rejects. Safe for concurrent use.
func (a *API) Do(ctx context.Context, req *Request, resp *Response) {
	rt, rawID := parsePath(a.cfg.PathPrefix, req.Path)
	if rt == routeNone {
		resp.setError(errNotFound, a.retry)
		return
	}
	switch {
	case rt == routeLikes && req.Method != http.MethodPost && req.Method != http.MethodDelete:
		resp.setError(errMethod, a.retry)
		resp.Allow = "POST, DELETE"
		return
	case rt == routeCount && req.Method != http.MethodGet && req.Method != http.MethodHead:
		resp.setError(errMethod, a.retry)
		resp.Allow = "GET, HEAD"
		return
	}
	post, ok := parseID(rawID)
	if !ok {
		resp.setError(errBadPostID, a.retry)
		return
	}
	if rt == routeCount {
		a.doCount(ctx, post, resp)
		return
	}
	op := event.Like
	if req.Method == http.MethodDelete {
		op = event.Unlike
	}
	// Admission control comes before authentication, which costs CPU: under
	// overload a refused write must be cheap.
	// The slot is released however Do ends, a panic in a deeper layer
	// included (net/http recovers it and carries on): a leaked slot would
	// stay taken until the sidecar restarts.
	outcome := admission.Ignore
	if lim := a.deps.Admission; lim != nil {
		start, ok := lim.Acquire()
		if !ok {
			if m := a.deps.Metrics; m != nil {
				m.AdmissionShed.Inc()
			}
			resp.setError(errOverloaded, a.retry)
			return
		}
		defer func() { lim.Release(start, outcome) }()
	}
	user, err := a.deps.Auth.Authenticate(req.Authorization, req.UserHeader)
	if err != nil {
		resp.setError(classify(err), a.retry)
		return
	}
	if a.draining.Load() {
		resp.setError(errShuttingDown, a.retry)
		return
	}
	err = a.write(ctx, op, post, user)
	outcome = admissionOutcome(err)
	if err != nil {
		e := classify(err)
		if e.status >= 500 {
			a.log.Debug("write failed", zap.Int64("post", post), zap.Stringer("op", op), zap.Error(err))
		}
		resp.setError(e, a.retry)
		return
	}
	resp.Status = http.StatusOK
	resp.Body = append(resp.Body[:0], `{"liked":`...)
	resp.Body = strconv.AppendBool(resp.Body, op == event.Like)
	resp.Body = append(resp.Body, `,"post_id":`...)
	resp.Body = strconv.AppendInt(resp.Body, post, 10)
	resp.Body = append(resp.Body, `,"user_id":`...)
	resp.Body = strconv.AppendInt(resp.Body, user, 10)
	resp.Body = append(resp.Body, '}')
}

// write runs the duplicate check and the log write under write.timeout.
func (a *API) write(ctx context.Context, op event.Op, post, user int64) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.WriteTimeout)
	defer cancel()
	tk, err := a.deps.Dedup.Begin(ctx, op, post, user)
	if err != nil {
		return err
	}
	err = a.deps.Writer.Submit(ctx, op, post, user, tk.Unfiltered())
	a.deps.Dedup.Finish(tk, err == nil)
	return err
}

func (a *API) doCount(ctx context.Context, post int64, resp *Response) {
	n, err := a.Count(ctx, post)
	if err != nil {
		a.log.Debug("count failed", zap.Int64("post", post), zap.Error(err))
		resp.setError(errCountDown, a.retry)
		return
	}
	resp.Status = http.StatusOK
	resp.CacheControl = "public, max-age=1"
	resp.Body = append(resp.Body[:0], `{"post_id":`...)
	resp.Body = strconv.AppendInt(resp.Body, post, 10)
	resp.Body = append(resp.Body, `,"count":`...)
	resp.Body = strconv.AppendInt(resp.Body, n, 10)
	resp.Body = append(resp.Body, `,"is_approximate":true}`...)
}
