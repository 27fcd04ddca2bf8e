package envoy

import (
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/likes-sidecar/likes/proxy"
)

// headerValue returns h's value without copying it. Envoy sends a header
// value in raw_value (bytes; recent releases, runtime guard
// envoy.reloadable_features.send_header_raw_value on) or in value (string;
// older releases, or with the guard off); raw reports which one was used.
//
// Aliasing raw_value is sound: protobuf-go copies bytes fields out of the
// wire buffer when it decodes, nothing writes to them afterwards, and
// decoding the next message into the same ProcessingRequest resets it to
// fresh nested messages instead of overwriting the old ones. So the string
// stays immutable for as long as anything (the auth token cache, say)
// holds it.
func headerValue(h *corev3.HeaderValue) (v string, raw bool) {
	if b := h.RawValue; len(b) > 0 {
		return unsafe.String(&b[0], len(b)), true
	}
	return h.Value, false
}

// requestFromHeaders fills req from Envoy's request header map: :method,
// :path, authorization and, when userHeader is not empty, that header. As
// with net/http's Header.Get, the first occurrence of a header counts. Pseudo
// headers match exactly; other names case-insensitively (Envoy sends them in
// lower case, other clients may not).
//
// It returns whether Envoy used raw_value (decided by :path, which Envoy
// always sends), so that the answer's headers can use the same field; and
// [ErrMissingPath] or [ErrMissingMethod] when either is absent or empty. It
// never allocates and never panics, whatever the map holds (nil included).
func requestFromHeaders(hm *corev3.HeaderMap, userHeader string, req *proxy.Request) (raw bool, err error) {
	*req = proxy.Request{}
	var havePath, haveMethod, haveAuth, haveUser bool
	for _, h := range hm.GetHeaders() {
		if h == nil {
			continue
		}
		switch k := h.Key; {
		case k == ":path":
			if !havePath {
				req.Path, raw = headerValue(h)
				havePath = true
			}
		case k == ":method":
			if !haveMethod {
				req.Method, _ = headerValue(h)
				haveMethod = true
			}
		case len(k) == len("authorization") && equalFoldASCII(k, "authorization"):
			if !haveAuth {
				req.Authorization, _ = headerValue(h)
				haveAuth = true
			}
		case userHeader != "" && len(k) == len(userHeader) && equalFoldASCII(k, userHeader):
			if !haveUser {
				req.UserHeader, _ = headerValue(h)
				haveUser = true
			}
		}
	}
	switch {
	case req.Path == "":
		return raw, ErrMissingPath
	case req.Method == "":
		return raw, ErrMissingMethod
	}
	return raw, nil
}

// equalFoldASCII compares a and b, of equal length, ignoring ASCII case.
func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
