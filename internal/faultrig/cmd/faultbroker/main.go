// Command faultbroker is the Kafka-protocol broker of the fault rig: an
// in-memory kfake cluster of one broker on a loopback port, in a process of
// its own, with a small HTTP control endpoint that cuts the broker off the
// network and restores it.
//
//	faultbroker --listen 127.0.0.1:P --control 127.0.0.1:Q --topic like_events --partitions 4
//
// Control (HTTP on --control):
//
//	POST /cut      close every client connection; from now on accept new
//	               connections but never read from them (a black hole:
//	               clients time out, as behind a dead network path)
//	POST /restore  close the black-holed connections and serve again
//	POST /slow?per_record=D
//	               make every produce request take D per record it carries
//	               before it is handled (D=0 restores full speed). The
//	               broker handles one request at a time, so this caps its
//	               throughput at 1/D records per second: a broker at capacity.
//	GET  /healthz  200 "ok" (also while cut: the control port is not the broker)
//
// The log lives in memory and survives a cut (the broker process keeps
// running), so a cut is an outage without data loss. Killing the process
// loses the log; the rig never does that.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "broker address (loopback only)")
	control := flag.String("control", "127.0.0.1:0", "control HTTP address")
	topic := flag.String("topic", "like_events", "topic to create")
	partitions := flag.Int("partitions", 4, "partitions of the topic")
	minSession := flag.Duration("min-session-timeout", 100*time.Millisecond, "smallest consumer group session timeout accepted")
	flag.Parse()

	_, p, err := net.SplitHostPort(*listen)
	if err != nil {
		log.Fatalf("faultbroker: --listen %q: %v", *listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		log.Fatalf("faultbroker: --listen %q: bad port", *listen)
	}
	sw := &switchboard{}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ClusterID("likes-faultrig"),
		kfake.SeedTopics(int32(*partitions), *topic),
		kfake.GroupMinSessionTimeout(*minSession),
		kfake.ListenFn(sw.listen),
	)
	if err != nil {
		log.Fatalf("faultbroker: start kfake: %v", err)
	}
	defer c.Close()
	var perRecord atomic.Int64 // ns of delay per produced record
	c.ControlKey(kmsg.Produce.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if d := perRecord.Load(); d > 0 {
			time.Sleep(time.Duration(d * int64(producedRecords(req.(*kmsg.ProduceRequest)))))
		}
		return nil, nil, false // observed only: kfake handles it as usual
	})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /cut", func(w http.ResponseWriter, _ *http.Request) {
		n := sw.cut()
		fmt.Fprintf(w, "cut: closed %d connections\n", n)
	})
	mux.HandleFunc("POST /restore", func(w http.ResponseWriter, _ *http.Request) {
		n := sw.restore()
		fmt.Fprintf(w, "restored: closed %d black-holed connections\n", n)
	})
	mux.HandleFunc("POST /slow", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("per_record"))
		if err != nil || d < 0 {
			http.Error(w, "per_record: want a duration ≥ 0", http.StatusBadRequest)
			return
		}
		perRecord.Store(int64(d))
		fmt.Fprintf(w, "slow: %v per produced record\n", d)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		log.Fatalf("faultbroker: --control %q: %v", *control, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	fmt.Printf("faultbroker kafka=%s control=%s topic=%s partitions=%d\n", c.ListenAddrs()[0], ln.Addr(), *topic, *partitions)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}

// recordBatchHeader is the size of a Kafka record batch's header (magic 2).
const recordBatchHeader = 61

// producedRecords counts the records of a produce request from its record
// batch headers (uncompressed even when the records are not).
func producedRecords(req *kmsg.ProduceRequest) int {
	n := 0
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			for b := p.Records; len(b) >= recordBatchHeader; {
				var rb kmsg.RecordBatch
				if err := rb.ReadFrom(b); err != nil {
					break
				}
				n += int(rb.NumRecords)
				next := 12 + int(rb.Length)
				if next <= 0 || next > len(b) {
					break
				}
				b = b[next:]
			}
		}
	}
	return n
}

// switchboard wraps the broker's listener so that its connections can be cut.
// Safe for concurrent use.
type switchboard struct {
	mu   sync.Mutex
	down bool
	live map[net.Conn]struct{} // connections served by kfake
	held map[net.Conn]struct{} // connections accepted while down, never read
}

func (s *switchboard) listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return &cutListener{Listener: ln, s: s}, nil
}

// cut closes every live connection and black-holes new ones.
func (s *switchboard) cut() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = true
	n := len(s.live)
	for c := range s.live {
		c.Close()
	}
	s.live = nil
	return n
}

// restore closes the black-holed connections and serves new ones again.
func (s *switchboard) restore() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = false
	n := len(s.held)
	for c := range s.held {
		c.Close()
	}
	s.held = nil
	return n
}

// admit decides what to do with a new connection: true hands it to kfake.
func (s *switchboard) admit(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		if s.held == nil {
			s.held = map[net.Conn]struct{}{}
		}
		s.held[c] = struct{}{}
		return false
	}
	if s.live == nil {
		s.live = map[net.Conn]struct{}{}
	}
	s.live[c] = struct{}{}
	return true
}

func (s *switchboard) forget(c net.Conn) {
	s.mu.Lock()
	delete(s.live, c)
	s.mu.Unlock()
}

type cutListener struct {
	net.Listener
	s *switchboard
}

// Accept returns the next connection to serve, holding back those that
// arrive while the broker is cut off.
func (l *cutListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.s.admit(c) {
			return &trackedConn{Conn: c, s: l.s}, nil
		}
	}
}

type trackedConn struct {
	net.Conn
	s    *switchboard
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.s.forget(c.Conn) })
	return c.Conn.Close()
}
