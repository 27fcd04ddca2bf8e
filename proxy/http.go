package proxy

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

var responsePool = sync.Pool{New: func() any { return &Response{Body: make([]byte, 0, 256)} }}

// ServeHTTP serves the like API routes. Anything else is a JSON 404, so mount
// other handlers (health, metrics) in front of it. Safe for concurrent use.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	resp := responsePool.Get().(*Response)
	resp.Reset()
	req := Request{
		Method:        r.Method,
		Path:          r.URL.EscapedPath(),
		Authorization: r.Header.Get("Authorization"),
	}
	if a.userHeader != "" {
		req.UserHeader = r.Header.Get(a.userHeader)
	}
	a.Do(r.Context(), &req, resp)
	h := w.Header()
	h["Content-Type"] = jsonContentType
	if resp.CacheControl != "" {
		h["Cache-Control"] = []string{resp.CacheControl}
	}
	if resp.RetryAfter != "" {
		h["Retry-After"] = []string{resp.RetryAfter}
	}
	if resp.Allow != "" {
		h["Allow"] = []string{resp.Allow}
	}
	h["Content-Length"] = []string{strconv.Itoa(len(resp.Body))}
	w.WriteHeader(resp.Status)
	if r.Method != http.MethodHead {
		w.Write(resp.Body)
	}
	if m := a.deps.Metrics; m != nil {
		rt, _ := parsePath(a.cfg.PathPrefix, req.Path)
		name := routeName(rt, r.Method)
		m.Requests.WithLabelValues(name, statusText(resp.Status)).Inc()
		m.Latency.WithLabelValues(name, statusClass(resp.Status)).Observe(time.Since(start).Seconds())
	}
	responsePool.Put(resp)
}

var jsonContentType = []string{"application/json"}

func routeName(rt route, method string) string {
	switch {
	case rt == routeCount:
		return "count"
	case rt == routeLikes && method == http.MethodPost:
		return "like"
	case rt == routeLikes && method == http.MethodDelete:
		return "unlike"
	case rt == routeLikes:
		return "likes_other"
	}
	return "other"
}

var statusTexts = map[int]string{200: "200", 400: "400", 401: "401", 404: "404", 405: "405", 409: "409", 500: "500", 503: "503"}

// statusClass is the latency histogram's class label of a status code.
func statusClass(code int) string {
	switch {
	case code < 300:
		return "2xx"
	case code < 500:
		return "4xx"
	}
	return "5xx"
}

func statusText(code int) string {
	if s, ok := statusTexts[code]; ok {
		return s
	}
	return strconv.Itoa(code)
}
