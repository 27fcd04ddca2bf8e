package faultrig

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every line with the same line until the connection ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	_, err := bufio.NewReader(c).ReadString('\n')
	return err
}

func TestTCPProxy(t *testing.T) {
	p, err := NewTCPProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })

	live, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	t.Run("bytes go through", func(t *testing.T) {
		if err := roundTrip(live); err != nil {
			t.Fatalf("got %v, want an echo", err)
		}
	})
	t.Run("a cut closes live connections and refuses new ones", func(t *testing.T) {
		p.Cut()
		if err := roundTrip(live); err == nil {
			t.Fatal("got an echo on a cut connection, want an error")
		}
		c, err := net.Dial("tcp", p.Addr())
		if err == nil {
			err = roundTrip(c)
			c.Close()
		}
		if err == nil {
			t.Fatal("got an echo on a new connection while cut, want an error")
		}
		if p.Refused() < 2 {
			t.Errorf("got %d refused connection ends, want at least 2", p.Refused())
		}
	})
	t.Run("after a restore new connections go through again", func(t *testing.T) {
		p.Restore()
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := roundTrip(c); err != nil {
			t.Fatalf("got %v, want an echo", err)
		}
	})
}
