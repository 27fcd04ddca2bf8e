package faultrig

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/likes-sidecar/likes/internal/testenv"
)

// hostileHeaderTimeout is the sidecar's http.read_header_timeout in the
// hostile-input test (5 s by default; short here so slow clients are quick
// to test).
const hostileHeaderTimeout = 300 * time.Millisecond

// attack is one hostile request and the answer it must get.
type attack struct {
	name   string
	raw    string // the request as sent on the wire
	status int
	code   string // JSON error code; "" when the body is not the API's (431)
}

// TestHostileInput sends attacks to a real `likes serve` (RS256 tokens from
// a PEM public key, audience and issuer required) and asserts that each gets
// its documented status and error code, that the process is alive after each
// one, and that none writes anything: the log's end offsets do not move
// after any attack, and at the end the database has no like row and Redis no
// key that was not there before the attacks. Requests with a bad path or id
// carry a valid token, so a parser that let one through would write.
// Slow clients: connections that never finish their headers are closed after
// http.read_header_timeout while the sidecar keeps answering others; a
// request whose body never comes is answered at once (the API reads no
// body). Bound: 60 s.
func TestHostileInput(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pubFile := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(pubFile, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Sidecars: 1, Consumers: 1, Partitions: 4, SidecarSettings: map[string]string{
		"auth.jwt_secret":          "",
		"auth.public_key_file":     pubFile,
		"auth.audience":            "likes-api",
		"auth.issuer":              "faultrig",
		"http.read_header_timeout": hostileHeaderTimeout.String(),
	}}
	r := Start(t, cfg)
	bounded(t, 60*time.Second)
	sc := r.Sidecars[0]
	addr := sc.Addr

	now := time.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "42", "aud": "likes-api", "iss": "faultrig", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	rs256 := func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := rs256(claims(nil))
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	confused, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil)).SignedString(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) string { return rs256(claims(func(c jwt.MapClaims) { c[k] = v })) }
	without := func(k string) string { return rs256(claims(func(c jwt.MapClaims) { delete(c, k) })) }

	// The sanity like: the setup accepts a valid token and writes. It is the
	// sidecar's first write, so on a loaded machine it can outlast
	// write.timeout: a 503 asks for a retry, and after one the retry may
	// find the like already written (409).
	retried := false
	testenv.Eventually(t, 30*time.Second, func() error {
		st, _, body := send(t, addr, req("POST", "/posts/7/likes", "Authorization: Bearer "+valid))
		switch {
		case st == 200, st == 409 && retried:
			return nil
		case st == 503:
			retried = true
			return fmt.Errorf("valid like: got %d %s", st, body)
		}
		t.Fatalf("valid like: got %d %s, want 200", st, body)
		return nil
	})

	post := func(path, auth string) string { return req("POST", path, "Authorization: "+auth) }
	bearer := func(tok string) string { return post("/posts/8/likes", "Bearer "+tok) }
	vb := "Bearer " + valid
	attacks := []attack{
		// Tokens.
		{"alg none", bearer(none), 401, "invalid_token"},
		{"HS256 signed with the RSA public key (key confusion)", bearer(confused), 401, "invalid_token"},
		{"expired", bearer(with("exp", now.Add(-time.Hour).Unix())), 401, "invalid_token"},
		{"not yet valid", bearer(with("nbf", now.Add(time.Hour).Unix())), 401, "invalid_token"},
		{"no expiry", bearer(without("exp")), 401, "invalid_token"},
		{"another audience", bearer(with("aud", "other-api")), 401, "invalid_token"},
		{"another issuer", bearer(with("iss", "evil")), 401, "invalid_token"},
		{"sub zero", bearer(with("sub", "0")), 401, "invalid_token"},
		{"sub negative", bearer(with("sub", "-1")), 401, "invalid_token"},
		{"sub leading zero", bearer(with("sub", "042")), 401, "invalid_token"},
		{"sub overflowing", bearer(with("sub", "9223372036854775808")), 401, "invalid_token"},
		{"sub not decimal", bearer(with("sub", "0x2a")), 401, "invalid_token"},
		{"sub a number, not a string", bearer(with("sub", 42)), 401, "invalid_token"},
		{"signature of another token", bearer(valid[:strings.LastIndexByte(valid, '.')] + confused[strings.LastIndexByte(confused, '.'):]), 401, "invalid_token"},
		{"token of 9 KiB (over auth.MaxTokenLen)", bearer(strings.Repeat("a", 9<<10)), 401, "invalid_token"},
		{"token with invalid UTF-8", post("/posts/8/likes", "Bearer \xff\xfe."+valid[1:]), 401, "invalid_token"},
		{"no token", req("POST", "/posts/8/likes"), 401, "missing_token"},
		{"Basic credentials", post("/posts/8/likes", "Basic YWxpY2U6c2VjcmV0"), 401, "invalid_token"},
		{"a user id header instead of a token", req("POST", "/posts/8/likes", "X-User-Id: 42"), 401, "missing_token"},
		// Sizes.
		{"headers of 64 KiB", req("POST", "/posts/8/likes", "Authorization: "+vb, "X-Pad: "+strings.Repeat("x", 64<<10)), 431, ""},
		{"a token of 20 KiB (over http.max_header_bytes)", bearer(strings.Repeat("a", 20<<10)), 431, ""},
		{"body of 8 MiB without a token", req("POST", "/posts/8/likes", "Content-Length: 8388608") + strings.Repeat("x", 8<<20), 401, "missing_token"},
		{"body of 1 MiB with a bad post id", req("POST", "/posts/0/likes", "Authorization: "+vb, "Content-Length: 1048576") + strings.Repeat("{", 1<<20), 400, "invalid_post_id"},
	}
	// Post ids, all with a valid token.
	for _, id := range []string{"0", "-1", "+1", "01", "9223372036854775808", "99999999999999999999", "abc", "1.5", "0x10", "1e3",
		"%31", "%2B1", "%20%31", "%D9%A1" /* Arabic-Indic one */, "%ff", "%C0%B1" /* overlong '1' */, "1%00", "\xff", "\xc0\xb1"} {
		attacks = append(attacks, attack{"post id " + fmt.Sprintf("%q", id), post("/posts/"+id+"/likes", vb), 400, "invalid_post_id"})
	}
	// Path tricks, all with a valid token.
	for _, p := range []string{"//posts/9/likes", "/posts//likes", "/posts/9%2Flikes", "/posts/9/likes/", "/posts/9/likes%2Fcount",
		"/posts/9/../9/likes", "/posts/9/likes/../likes", "/./posts/9/likes", "/POSTS/9/likes", "/posts/9/likes/count/..", "/posts/9/likes;x", "/%70osts/9/likes"} {
		attacks = append(attacks, attack{"path " + p, post(p, vb), 404, "not_found"})
	}
	attacks = append(attacks,
		attack{"PUT on likes", req("PUT", "/posts/9/likes", "Authorization: "+vb), 405, "method_not_allowed"},
		attack{"GET on likes", req("GET", "/posts/9/likes", "Authorization: "+vb), 405, "method_not_allowed"},
		attack{"POST on count", req("POST", "/posts/9/likes/count", "Authorization: "+vb), 405, "method_not_allowed"},
	)

	offsets := logEnd(t, r.Broker.Addr, cfg.Partitions)
	keysBefore := redisKeys(t, r)
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			st, h, body := send(t, addr, a.raw)
			if st != a.status {
				t.Errorf("got status %d (%q), want %d", st, trim(body), a.status)
			}
			if a.code != "" {
				var e struct{ Error, Message string }
				if err := json.Unmarshal(body, &e); err != nil || e.Error != a.code || e.Message == "" {
					t.Errorf("got body %q (Content-Type %q), want JSON error %q with a message", trim(body), h.Get("Content-Type"), a.code)
				}
			}
			if !sc.Running() {
				t.Fatalf("the sidecar died:\n%s", sc.Output())
			}
			if err := httpOK("http://" + addr + "/healthz"); err != nil {
				t.Fatalf("the sidecar does not answer after the attack: %v", err)
			}
			if got := logEnd(t, r.Broker.Addr, cfg.Partitions); !slices.Equal(got, offsets) {
				t.Fatalf("got log end offsets %v after the attack, want %v (nothing written)", got, offsets)
			}
		})
	}

	t.Run("connections that never finish their headers are closed after the header timeout", func(t *testing.T) {
		const n = 50
		conns := make([]net.Conn, n)
		for i := range conns {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "POST /posts/8/likes HTTP/1.1\r\nHost: likes\r\nAuthorization: "+vb+"\r\n"); err != nil {
				t.Fatal(err)
			}
			conns[i] = c
		}
		start := time.Now()
		if st, _, body := send(t, addr, req("GET", "/posts/7/likes/count")); st != 200 {
			t.Errorf("a count read beside %d slow clients: got %d %s, want 200", n, st, trim(body))
		}
		for i, c := range conns {
			_ = c.SetReadDeadline(start.Add(hostileHeaderTimeout + 3*time.Second))
			b, err := io.ReadAll(c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("slow connection %d still open %v after its headers began, want it closed after %v", i, time.Since(start).Round(time.Millisecond), hostileHeaderTimeout)
			}
			if strings.HasPrefix(string(b), "HTTP/1.1 2") {
				t.Fatalf("slow connection %d: got %q, want no success", i, trim(b))
			}
		}
		t.Logf("%d slow connections closed within %v", n, time.Since(start).Round(time.Millisecond))
	})
	t.Run("a body that never comes does not hold the answer", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if _, err := io.WriteString(c, req("POST", "/posts/8/likes", "Content-Length: 100000")+"{"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("got %v, want an answer without the body", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || time.Since(start) > time.Second {
			t.Fatalf("got %d after %v, want 401 at once", resp.StatusCode, time.Since(start))
		}
	})

	if !sc.Running() {
		t.Fatalf("the sidecar died:\n%s", sc.Output())
	}
	if got := logEnd(t, r.Broker.Addr, cfg.Partitions); !slices.Equal(got, offsets) {
		t.Errorf("got log end offsets %v after the attacks, want %v", got, offsets)
	}
	var rows int64
	if err := r.DB.QueryRow(context.Background(), `SELECT count(*) FROM likes WHERE post_id <> 7`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("got %d like rows besides the sanity like's post, want 0", rows)
	}
	for k := range redisKeys(t, r) {
		// The sanity like's own post (7) may get its base and, when its
		// counter flush lands after the snapshot, its tail key.
		if !keysBefore[k] && !strings.HasPrefix(k, "likes:b:7") && !strings.HasPrefix(k, "likes:t:{7:") && k != "likes:epoch" {
			t.Errorf("got new Redis key %q after the attacks, want none", k)
		}
	}
	t.Logf("FIGURES hostile-input: %d attacks + 2 slow-client cases, each its documented status, no crash, nothing written", len(attacks))
}

// req builds a raw HTTP/1.1 request with the given header lines and no body.
func req(method, path string, headers ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + path + " HTTP/1.1\r\nHost: likes\r\nConnection: close\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// send writes raw on a new connection and reads the answer.
func send(t *testing.T, addr, raw string) (int, http.Header, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// Write concurrently: the server may answer (and stop reading) before
	// a large request is fully sent.
	go io.WriteString(c, raw)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, resp.Header, body
}

func trim(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// logEnd returns the end offset of every partition of the like topic.
func logEnd(t *testing.T, broker string, partitions int) []int64 {
	t.Helper()
	out := make([]int64, partitions)
	for p := range partitions {
		conn, err := kafka.DialLeader(context.Background(), "tcp", broker, "like_events", p)
		if err != nil {
			t.Fatal(err)
		}
		out[p], err = conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// redisKeys lists every key on every master of the rig's cluster.
func redisKeys(t *testing.T, r *Rig) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	for _, n := range r.Redis.Nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr})
		ks, err := c.Keys(context.Background(), "*").Result()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			keys[k] = true
		}
	}
	return keys
}

// TestForeignRecordsOnTheLog asserts that records on the like topic that are
// not like events this build reads (garbage bytes, foreign JSON, a future
// format version, truncated and oversized events, out-of-range ids) are
// skipped and counted by the consumers (likes_consumer_skipped_total) and
// stall nothing: likes written through the sidecars around them still reach
// the database and every count converges. Bound: 60 s.
func TestForeignRecordsOnTheLog(t *testing.T) {
	r := Start(t, Config{Sidecars: 1, Consumers: 2, Partitions: 4})
	bounded(t, 60*time.Second)
	stop := background(t, r, Load{Posts: []int64{801, 802, 803, 804}, FirstUser: 1_000, Users: 1000, Workers: 8, Rate: 200, UnlikeRatio: 0.3, Seed: 8})
	waitAcked(t, r, 0, 20)

	foreign := [][]byte{
		{0x00, 0x01, 0xff},
		[]byte("not json at all"),
		[]byte(`{"order":17,"total":"9.99"}`),
		[]byte(`{"v":2,"op":"like","post":801,"user":1,"bucket":1}`),
		[]byte(`{"v":1,"op":"like","post":801,"user":1`),
		[]byte(`{"v":1,"op":"boost","post":801,"user":1,"bucket":1}`),
		[]byte(`{"v":1,"op":"like","post":-801,"user":1,"bucket":1}`),
		[]byte(`{"v":1,"op":"like","post":801,"user":0,"bucket":1}`),
		[]byte(`{"v":1,"op":"like","post":9223372036854775808,"user":1,"bucket":1}`),
		[]byte(`{"v":1,"op":"like","post":"801","user":1,"bucket":1}`),
		[]byte(`{"v":1,"op":"like","post":801,"user":1,"bucket":"soon"}`),
		append([]byte(`{"v":1,"op":"like","post":801,"user":1,"bucket":1,"sidecar":"`), bytes100k()...), // cut off
		{},
	}
	w := &kafka.Writer{Addr: kafka.TCP(r.Broker.Addr), Topic: "like_events", Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	var msgs []kafka.Message
	for round := range 4 {
		for i, v := range foreign {
			msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "%d", 801+(round+i)%4), Value: v})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce foreign records: %v", err)
	}
	waitAcked(t, r, 0, 50)
	stop()
	rep := r.Converge(t, convergeBound)

	var skipped float64
	for _, c := range r.Consumers {
		if !c.Running() {
			t.Fatalf("%s exited:\n%s", c.Name, c.Output())
		}
		v, _, err := c.Metric("likes_consumer_skipped_total")
		if err != nil {
			t.Fatal(err)
		}
		skipped += v
	}
	if int(skipped) != len(msgs) {
		t.Errorf("got %v records skipped, want the %d foreign records", skipped, len(msgs))
	}
	figures(t, "foreign-records", rep, r.Model.Tally(), fmt.Sprintf("foreign-records=%d skipped=%.0f", len(msgs), skipped))
}

func bytes100k() []byte { return []byte(strings.Repeat("s", 100<<10)) }
