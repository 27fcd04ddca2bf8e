package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxBody bounds how much of an answer is read; the API's answers are tiny.
const maxBody = 64 << 10

// Credentials say who the user is. Build them with [Bearer] or [UserHeader];
// the zero value sends none (the sidecar answers 401 to a like). Credentials
// are plain values, safe to share.
type Credentials struct {
	header, value string
}

// Bearer returns credentials that send "Authorization: Bearer <token>", for
// the sidecar's auth.mode=jwt (the default). The token is the user's, as
// issued by the application's identity provider.
func Bearer(token string) Credentials {
	return Credentials{header: "Authorization", value: "Bearer " + token}
}

// UserHeader returns credentials that send the user id in the header name,
// for the sidecar's auth.mode=header (whose auth.user_header is name). Use it
// only where an authenticating proxy in front of the application sets the
// identity: the sidecar trusts the header as it is.
func UserHeader(name string, user int64) Credentials {
	return Credentials{header: name, value: strconv.FormatInt(user, 10)}
}

// Client calls one sidecar. Create it with [New], once per process, and
// share it. Safe for concurrent use.
type Client struct {
	cfg  Config
	base string
	hc   *http.Client
	tr   *http.Transport
}

// New validates cfg and returns a client with its own connection pool.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy: nil, // the sidecar is local: never go through HTTP_PROXY
		DialContext: (&net.Dialer{
			Timeout:   cfg.Timeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          cfg.MaxIdleConns,
		MaxIdleConnsPerHost:   cfg.MaxIdleConns,
		IdleConnTimeout:       cfg.IdleConnTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &Client{
		cfg:  cfg,
		base: cfg.BaseURL,
		hc:   &http.Client{Transport: tr},
		tr:   tr,
	}, nil
}

// Close closes idle connections. In-flight calls finish; the client stays
// usable (a later call dials again). Safe for concurrent use.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// Like records that the user of cred likes post. It returns nil once the
// sidecar has durably logged the like (its 200); [ErrAlreadyLiked] if the
// user already likes the post; [ErrUnauthorized], [ErrInvalidPost]; an
// [*OverloadError] (Retry-After) when the sidecar sheds load or its log is
// unreachable; or a transport error. It blocks until the answer, ctx's end
// or Config.Timeout (when ctx has no deadline). Safe for concurrent use.
func (c *Client) Like(ctx context.Context, cred Credentials, post int64) error {
	return c.write(ctx, http.MethodPost, cred, post, true)
}

// Unlike records that the user of cred no longer likes post. It returns
// [ErrNotLiked] if the user does not like it; otherwise as [Client.Like].
// Safe for concurrent use.
func (c *Client) Unlike(ctx context.Context, cred Credentials, post int64) error {
	return c.write(ctx, http.MethodDelete, cred, post, false)
}

// Count returns post's like count. It is approximate by design (the API says
// is_approximate: true): a like is visible within a few seconds everywhere,
// and at once through the sidecar that accepted it. Counts need no
// credentials. Errors: [ErrInvalidPost], [*OverloadError] when the sidecar
// cannot read the count, or a transport error. Safe for concurrent use.
func (c *Client) Count(ctx context.Context, post int64) (int64, error) {
	if post < 1 {
		return 0, invalidPost(post)
	}
	status, h, body, err := c.do(ctx, http.MethodGet, c.base+"/posts/"+strconv.FormatInt(post, 10)+"/likes/count", Credentials{})
	if err != nil {
		return 0, err
	}
	return decodeCount(status, h, body, time.Now())
}

func (c *Client) write(ctx context.Context, method string, cred Credentials, post int64, like bool) error {
	if post < 1 {
		return invalidPost(post)
	}
	status, h, body, err := c.do(ctx, method, c.base+"/posts/"+strconv.FormatInt(post, 10)+"/likes", cred)
	if err != nil {
		return err
	}
	return decodeWrite(status, h, body, like, time.Now())
}

func invalidPost(post int64) error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_post_id", Message: "post id must be positive, got " + strconv.FormatInt(post, 10)}
}

// do sends one request and returns the status, headers and (bounded) body.
// The body is always read to its end and closed, so the connection goes
// back to the pool.
func (c *Client) do(ctx context.Context, method, u string, cred Credentials) (int, http.Header, []byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("likes %s %s: %w", method, u, err)
	}
	if cred.header != "" {
		req.Header.Set(cred.header, cred.value)
	}
	req.Header.Set("Accept", "application/json")
	if c.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err // a *url.Error naming method and URL
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	// Drain what is left (bounded) so the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if err != nil {
		return 0, nil, nil, &url.Error{Op: method, URL: u, Err: err}
	}
	return resp.StatusCode, resp.Header, body, nil
}

// errorBody is the API's error answer.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// decodeError turns a non-200 answer into an [*Error] or, for 503, an
// [*OverloadError]. A body that is not the API's JSON still gives the status.
func decodeError(status int, h http.Header, body []byte, now time.Time) error {
	var eb errorBody
	_ = json.Unmarshal(body, &eb) // best effort: the status alone decides the sentinel
	if status == http.StatusServiceUnavailable {
		return &OverloadError{Code: eb.Error, Message: eb.Message, RetryAfter: parseRetryAfter(h.Get("Retry-After"), now)}
	}
	return &Error{Status: status, Code: eb.Error, Message: eb.Message}
}

// decodeWrite checks a like (like=true) or unlike answer.
func decodeWrite(status int, h http.Header, body []byte, like bool, now time.Time) error {
	if status != http.StatusOK {
		return decodeError(status, h, body, now)
	}
	var ok struct {
		Liked *bool `json:"liked"`
	}
	if err := json.Unmarshal(body, &ok); err != nil || ok.Liked == nil {
		return fmt.Errorf("%w: 200 without a liked field: %.200q", ErrProtocol, body)
	}
	if *ok.Liked != like {
		return fmt.Errorf("%w: 200 with liked %v, want %v", ErrProtocol, *ok.Liked, like)
	}
	return nil
}

// decodeCount reads a count answer.
func decodeCount(status int, h http.Header, body []byte, now time.Time) (int64, error) {
	if status != http.StatusOK {
		return 0, decodeError(status, h, body, now)
	}
	var cb struct {
		Count json.RawMessage `json:"count"`
	}
	if err := json.Unmarshal(body, &cb); err != nil || cb.Count == nil {
		return 0, fmt.Errorf("%w: 200 without a count: %.200q", ErrProtocol, body)
	}
	n, err := strconv.ParseInt(string(cb.Count), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: count %.40s is not a non-negative integer", ErrProtocol, cb.Count)
	}
	return n, nil
}
