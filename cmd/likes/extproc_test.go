package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/likes-sidecar/likes/auth"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// extProcCall plays Envoy: one stream, the request headers of method path
// (with a bearer token for user when user > 0), and the immediate answer.
func extProcCall(t *testing.T, addr, method, path string, user int64) (int, string) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := extprocv3.NewExternalProcessorClient(cc).Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hs := []*corev3.HeaderValue{{Key: ":method", RawValue: []byte(method)}, {Key: ":path", RawValue: []byte(path)}}
	if user > 0 {
		tok, err := auth.Sign(secret, user, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, &corev3.HeaderValue{Key: "authorization", RawValue: []byte("Bearer " + tok)})
	}
	if err := st.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hs}, EndOfStream: true},
	}}); err != nil {
		t.Fatal(err)
	}
	r, err := st.Recv()
	if err != nil {
		t.Fatalf("%s %s through ext_proc: %v", method, path, err)
	}
	ir := r.GetImmediateResponse()
	if ir == nil {
		t.Fatalf("%s %s through ext_proc: got %v, want an immediate response", method, path, r)
	}
	return int(ir.GetStatus().GetCode()), string(ir.GetBody())
}

// waitReady polls /readyz of the HTTP API at addr.
func waitReady(t *testing.T, p *testenv.Process, addr string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if p.Exited() {
			t.Fatalf("likes exited: %s", p.Output())
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz: %d", resp.StatusCode)
		}
		return nil
	})
}

func checkLikesThroughExtProc(t *testing.T, p *testenv.Process, grpcAddr string) {
	t.Helper()
	if code, body := extProcCall(t, grpcAddr, "POST", "/posts/8/likes", 3); code != 200 || body != `{"liked":true,"post_id":8,"user_id":3}` {
		t.Fatalf("like: got %d %s, want 200", code, body)
	}
	if code, body := extProcCall(t, grpcAddr, "POST", "/posts/8/likes", 3); code != 409 {
		t.Fatalf("like again: got %d %s, want 409", code, body)
	}
	if code, body := extProcCall(t, grpcAddr, "POST", "/posts/8/likes", 0); code != 401 {
		t.Fatalf("like without a token: got %d %s, want 401", code, body)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitTimeout(30 * time.Second); err != nil {
		t.Fatalf("did not exit cleanly on SIGTERM: %v\n%s", err, p.Output())
	}
}

func TestExtProcListen(t *testing.T) {
	bin := testenv.Build(t, "./cmd/likes")
	t.Run("likes dev --extproc-listen answers likes through ext_proc", func(t *testing.T) {
		api := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		ext := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		p := testenv.StartProcess(t, exec.Command(bin, "dev", "--listen", api, "--extproc-listen", ext, "--data-dir", t.TempDir(), "--jwt-secret", secret))
		waitReady(t, p, api)
		checkLikesThroughExtProc(t, p, ext)
		if !strings.Contains(p.Output(), "ext_proc on "+ext) {
			t.Errorf("the banner does not show the ext_proc address %s:\n%s", ext, p.Output())
		}
	})
	t.Run("likes serve --extproc-listen answers likes through ext_proc", func(t *testing.T) {
		api := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		ext := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		kafka := testenv.Kafka(t, 2, "like_events")
		p := testenv.StartProcess(t, exec.Command(bin, "serve", "--listen", api, "--extproc-listen", ext,
			"--redis-addrs", testenv.Redis(t).Addr, "--kafka-brokers", kafka.Addrs[0], "--db-url", testenv.Postgres(t),
			"--migrate", "--jwt-secret", secret))
		waitReady(t, p, api)
		checkLikesThroughExtProc(t, p, ext)
	})
	t.Run("a bad extproc value is an error naming the key, before anything starts", func(t *testing.T) {
		out, err := run(t, bin, []string{"LIKES_EXTPROC_KEEPALIVE_TIME=100ms"}, "dev", "--extproc-listen", "127.0.0.1:0", "--data-dir", t.TempDir())
		if err == nil || !strings.Contains(out, "extproc.keepalive_time") {
			t.Fatalf("got %v: %s, want a non-zero exit naming extproc.keepalive_time", err, out)
		}
	})
	t.Run("a drain longer than the shutdown is an error naming the key", func(t *testing.T) {
		out, err := run(t, bin, []string{"LIKES_EXTPROC_DRAIN_TIMEOUT=20s"}, "dev", "--extproc-listen", "127.0.0.1:0", "--data-dir", t.TempDir())
		if err == nil || !strings.Contains(out, "extproc.drain_timeout") {
			t.Fatalf("got %v: %s, want a non-zero exit naming extproc.drain_timeout", err, out)
		}
	})
	t.Run("an address that cannot be bound is an error naming the key", func(t *testing.T) {
		out, err := run(t, bin, nil, "dev", "--listen", "127.0.0.1:0", "--extproc-listen", "127.0.0.1:99999", "--data-dir", t.TempDir())
		if err == nil || !strings.Contains(out, "extproc.listen") {
			t.Fatalf("got %v: %s, want a non-zero exit naming extproc.listen", err, out)
		}
	})
}
