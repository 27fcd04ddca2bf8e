package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago (the
// kernel picked it for a listener that has since been closed). Another
// process may take it before the caller binds it; helpers that start servers
// retry on "address already in use". It fails the test if no port can be
// had. Safe for concurrent use.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	return port
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen on 127.0.0.1:0: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Cluster nodes need port and port+clusterBusOffset both free. Kernel-picked
// ephemeral ports (32768–60999) can exceed 65535 after the offset, so cluster
// ports are drawn at random from [clusterPortMin, clusterPortMax): below the
// ephemeral range, so outgoing connections rarely collide with them.
const (
	clusterBusOffset = 10000
	clusterPortMin   = 15000
	clusterPortMax   = 25000
)

// freeClusterPort returns a port p such that p and p+10000 are both free on
// 127.0.0.1 at the moment of the check.
func freeClusterPort() (int, error) {
	var lastErr error
	for range 100 {
		p := clusterPortMin + rand.IntN(clusterPortMax-clusterPortMin)
		if err := portsFree(p, p+clusterBusOffset); err != nil {
			lastErr = err
			continue
		}
		return p, nil
	}
	return 0, fmt.Errorf("no port p with p and p+%d free after 100 tries: %w", clusterBusOffset, lastErr)
}

func portsFree(ports ...int) error {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, p := range ports {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return err
		}
		lns = append(lns, ln)
	}
	return nil
}
