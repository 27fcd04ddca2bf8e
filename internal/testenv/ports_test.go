package testenv

import (
	"fmt"
	"net"
	"testing"
)

func TestFreePort(t *testing.T) {
	t.Run("the port can be listened on", func(t *testing.T) {
		p := FreePort(t)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("listen on free port %d: %v", p, err)
		}
		ln.Close()
	})

	t.Run("a cluster port has its bus port free too", func(t *testing.T) {
		p, err := freeClusterPort()
		if err != nil {
			t.Fatal(err)
		}
		if p < clusterPortMin || p >= clusterPortMax {
			t.Errorf("got port %d, want one in [%d, %d)", p, clusterPortMin, clusterPortMax)
		}
		if err := portsFree(p, p+clusterBusOffset); err != nil {
			t.Errorf("got %v listening on %d and %d, want both free", err, p, p+clusterBusOffset)
		}
	})

	t.Run("a taken port is reported as not free", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if err := portsFree(ln.Addr().(*net.TCPAddr).Port); err == nil {
			t.Errorf("got nil for a port in use, want an error")
		}
	})
}
