package faultrig

import (
	"fmt"
	"io"
	"net"
	"sync"
)

// TCPProxy forwards loopback TCP connections to a target address and can cut
// them: [TCPProxy.Cut] closes every forwarded connection and refuses new ones
// (accepted, then closed at once) until [TCPProxy.Restore]. The rig puts one
// in front of PostgreSQL, so that "the database is unreachable" is a fault of
// the test's own making that leaves the machine's PostgreSQL alone.
//
// All methods are safe for concurrent use.
type TCPProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{} // both ends of every forwarded connection
	wg    sync.WaitGroup        // the accept loop and the copy goroutines

	// Cuts counts connections closed by Cut and refused while cut.
	cuts int
}

// NewTCPProxy listens on a free loopback port and forwards to target. Close
// it when done.
func NewTCPProxy(target string) (*TCPProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tcp proxy to %s: %w", target, err)
	}
	p := &TCPProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's "127.0.0.1:port".
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every forwarded connection and refuses new ones until Restore.
func (p *TCPProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
		p.cuts++
	}
	clear(p.conns)
}

// Restore lets connections through again.
func (p *TCPProxy) Restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// Refused returns how many connection ends were closed by Cut or refused
// while cut.
func (p *TCPProxy) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// Close stops listening, closes every connection and waits for the proxy's
// goroutines.
func (p *TCPProxy) Close() error {
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *TCPProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve forwards one connection; it owns c.
func (p *TCPProxy) serve(c net.Conn) {
	defer p.wg.Done()
	if !p.track(c) {
		c.Close()
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil || !p.track(up) {
		if up != nil {
			up.Close()
		}
		p.untrack(c)
		c.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src) // ends on EOF, a reset or a Cut; either way both ends close
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	p.untrack(c)
	p.untrack(up)
}

// track registers c, or refuses it (false) while the proxy is cut.
func (p *TCPProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		p.cuts++
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *TCPProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
