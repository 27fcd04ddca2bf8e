package faultrig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/likes-sidecar/likes/auth"
	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/internal/rawhttp"
)

// Target is one sidecar the driver talks to.
type Target struct {
	Name string // e.g. "sidecar-1"
	Base string // "http://127.0.0.1:port"
}

// Result is one answered (or failed) write.
type Result struct {
	At      time.Time     // when the request was sent
	Latency time.Duration // until the answer (or the error)
	Target  int           // index into the client's targets
	Op      event.Op
	Post    int64
	User    int64
	Status  int    // 0 when there was no answer
	Code    string // the error code of a JSON error body
	// RetryAfter is the Retry-After header of the answer.
	RetryAfter string
	Err        error // transport error, if any
	Outcome    Outcome
}

// Client sends likes, unlikes and count reads to sidecars, as a
// well-behaved app would, and records every write's outcome in a [Model].
// Safe for concurrent use.
type Client struct {
	Targets []Target
	Model   *Model
	secret  string
	hc      *http.Client

	mu     sync.Mutex
	tokens map[int64]string
	acked  []atomic.Int64 // per target
}

// NewClient returns a client signing HS256 tokens with secret; each request
// is bounded by timeout. conns is the number of keep-alive connections kept
// per sidecar.
func NewClient(targets []Target, secret string, model *Model, timeout time.Duration, conns int) *Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConns:        conns * len(targets),
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{
		Targets: targets,
		Model:   model,
		secret:  secret,
		hc:      &http.Client{Transport: tr, Timeout: timeout},
		tokens:  map[int64]string{},
		acked:   make([]atomic.Int64, len(targets)),
	}
}

// Acked returns how many writes sidecar i has acknowledged to this client.
func (c *Client) Acked(i int) int64 { return c.acked[i].Load() }

// Close closes idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) token(user int64) (string, error) {
	c.mu.Lock()
	tok, ok := c.tokens[user]
	c.mu.Unlock()
	if ok {
		return tok, nil
	}
	tok, err := auth.Sign(c.secret, user, time.Hour, time.Now())
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.tokens[user] = tok
	c.mu.Unlock()
	return tok, nil
}

// Write sends one like or unlike to target i, records its outcome in the
// model and returns it.
func (c *Client) Write(ctx context.Context, i int, op event.Op, post, user int64) (r Result) {
	r = Result{At: time.Now(), Target: i, Op: op, Post: post, User: user}
	defer c.record(&r)
	tok, err := c.token(user)
	if err != nil {
		r.Err, r.Outcome = err, NoOp
		return r
	}
	method := http.MethodPost
	if op == event.Unlike {
		method = http.MethodDelete
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Targets[i].Base+likesPath(post), nil)
	if err != nil {
		r.Err, r.Outcome = err, NoOp
		return r
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.hc.Do(req)
	if err != nil {
		r.Err = err
		r.Outcome = ClassifyWrite(0, "", err, !isDialError(err))
		return r
	}
	// The status line arrived, so the status stands even if the body is cut.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	r.Status = resp.StatusCode
	r.RetryAfter = resp.Header.Get("Retry-After")
	r.classify(body)
	return r
}

// RawConns are one owner's keep-alive connections to the client's targets,
// for [Client.WriteRaw]. Not safe for concurrent use.
type RawConns struct {
	conns []*rawhttp.Conn
	hosts []string // host:port of each target, for the Host header
	req   []byte
}

// NewRawConns returns connections (opened on first use) to every target.
func (c *Client) NewRawConns() *RawConns {
	rc := &RawConns{conns: make([]*rawhttp.Conn, len(c.Targets)), hosts: make([]string, len(c.Targets))}
	for i, t := range c.Targets {
		rc.hosts[i] = strings.TrimPrefix(t.Base, "http://")
		rc.conns[i] = rawhttp.NewConn(rc.hosts[i], c.hc.Timeout)
	}
	return rc
}

// Close closes the connections.
func (rc *RawConns) Close() {
	for _, c := range rc.conns {
		c.Close()
	}
}

// WriteRaw is [Client.Write] through rc: HTTP/1.1 spoken by package
// rawhttp instead of net/http's client, which costs about as much CPU as
// the sidecar it drives. The overload scenario sends through it, so that
// the load generator takes as little as it can of the cores it shares with
// the sidecar under test.
func (c *Client) WriteRaw(rc *RawConns, i int, op event.Op, post, user int64) (r Result) {
	r = Result{At: time.Now(), Target: i, Op: op, Post: post, User: user}
	defer c.record(&r)
	tok, err := c.token(user)
	if err != nil {
		r.Err, r.Outcome = err, NoOp
		return r
	}
	conn := rc.conns[i]
	rc.req = rc.req[:0]
	if op == event.Unlike {
		rc.req = append(rc.req, "DELETE "...)
	} else {
		rc.req = append(rc.req, "POST "...)
	}
	rc.req = append(rc.req, likesPath(post)...)
	rc.req = append(rc.req, " HTTP/1.1\r\nHost: "...)
	rc.req = append(rc.req, rc.hosts[i]...)
	rc.req = append(rc.req, "\r\nAuthorization: Bearer "...)
	rc.req = append(rc.req, tok...)
	rc.req = append(rc.req, "\r\nContent-Length: 0\r\n\r\n"...)
	resp, err := conn.Do(rc.req)
	if err != nil {
		r.Err = err
		r.Outcome = ClassifyWrite(0, "", err, !errors.Is(err, rawhttp.ErrDial))
		return r
	}
	r.Status = resp.Status
	r.RetryAfter = string(resp.RetryAfter)
	r.classify(resp.Body)
	return r
}

// likesPath is the API path of a post's likes.
func likesPath(post int64) string { return "/posts/" + strconv.FormatInt(post, 10) + "/likes" }

// classify sets r's error code (from a JSON error body) and outcome from
// its status.
func (r *Result) classify(body []byte) {
	if r.Status != 200 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		r.Code = e.Error
	}
	r.Outcome = ClassifyWrite(r.Status, r.Code, nil, true)
}

// record ends a write: its latency, the per-target count and the model.
func (c *Client) record(r *Result) {
	r.Latency = time.Since(r.At)
	if r.Outcome == Acked {
		c.acked[r.Target].Add(1)
	}
	if c.Model != nil {
		c.Model.Record(r.Op, r.Post, r.User, r.Outcome)
	}
}

// isDialError reports whether err happened before the request could be
// sent: the connection could not be opened.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Count reads a post's count from target i.
func (c *Client) Count(ctx context.Context, i int, post int64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Targets[i].Base+likesPath(post)+"/count", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("count of post %d from %s: %w", post, c.Targets[i].Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, fmt.Errorf("count of post %d from %s: %w", post, c.Targets[i].Name, err)
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("count of post %d from %s: status %d: %s", post, c.Targets[i].Name, resp.StatusCode, body)
	}
	var v struct {
		Count *int64 `json:"count"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Count == nil {
		return 0, fmt.Errorf("count of post %d from %s: bad body %q", post, c.Targets[i].Name, body)
	}
	return *v.Count, nil
}
