package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Redis commands are counted two ways, which differ on purpose.
//
// Sent: a counting TCP proxy between the clients and Redis parses the
// client side of the RESP stream and counts every command sent, pipelined
// or not, the connection handshake (HELLO, CLIENT SETINFO) included. It
// runs in front of the embedded stand-in (miniredis keeps no statistics)
// and in front of a single real node; a cluster's clients follow
// redirections to the real nodes, past any proxy, so there it is n/a.
//
// Executed: redis-server's INFO commandstats deltas. They also count every
// redis.call made inside a Lua script (a script that tests 100 bits of a
// filter is 1 command sent, 101 executed), and leave out commands the
// server rejected before running them (CLIENT SETINFO on Redis 7.0).

// commandCounter returns cumulative per-command call counts (lower case).
type commandCounter interface {
	commands(ctx context.Context) (map[string]int64, error)
}

// sumCommands totals a per-command map, leaving out INFO (the benchmark's
// own sampling).
func sumCommands(m map[string]int64) int64 {
	var n int64
	for k, v := range m {
		if k != "info" {
			n += v
		}
	}
	return n
}

// infoCounter reads INFO commandstats from every master of rdb.
type infoCounter struct{ rdb redis.UniversalClient }

func (c infoCounter) commands(ctx context.Context) (map[string]int64, error) {
	var mu sync.Mutex
	total := map[string]int64{}
	add := func(ctx context.Context, cl *redis.Client) error {
		s, err := cl.Info(ctx, "commandstats").Result()
		if err != nil {
			return fmt.Errorf("INFO commandstats on %s: %w", cl.Options().Addr, err)
		}
		m, err := parseCommandStats(s)
		if err != nil {
			return fmt.Errorf("INFO commandstats on %s: %w", cl.Options().Addr, err)
		}
		mu.Lock()
		for k, v := range m {
			total[k] += v
		}
		mu.Unlock()
		return nil
	}
	switch r := c.rdb.(type) {
	case *redis.ClusterClient:
		if err := r.ForEachMaster(ctx, add); err != nil {
			return nil, err
		}
	case *redis.Client:
		if err := add(ctx, r); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("INFO commandstats: unsupported client %T", c.rdb)
	}
	return total, nil
}

// parseCommandStats parses the body of INFO commandstats:
//
//	# Commandstats
//	cmdstat_get:calls=2,usec=14,usec_per_call=7.00,rejected_calls=0,failed_calls=0
//	cmdstat_client|setinfo:calls=4,...
//
// into command → calls. Other lines are ignored; a cmdstat line without a
// valid calls field is an error.
func parseCommandStats(s string) (map[string]int64, error) {
	out := map[string]int64{}
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "cmdstat_")
		if !ok {
			continue
		}
		name, fields, ok := strings.Cut(rest, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("commandstats line %q: no name", clip([]byte(line)))
		}
		calls := int64(-1)
		for f := range strings.SplitSeq(fields, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("commandstats line %q: calls %q", clip([]byte(line)), v)
				}
				calls = n
			}
		}
		if calls < 0 {
			return nil, fmt.Errorf("commandstats line %q: no calls field", clip([]byte(line)))
		}
		out[strings.ToLower(name)] += calls
	}
	return out, nil
}

// respCounter counts the commands in a client-to-server RESP byte stream fed
// to it in arbitrary pieces: arrays of bulk strings ("*2\r\n$3\r\nGET\r\n…")
// and inline commands ("PING\r\n"). It keeps only a line's worth of state.
// Input it cannot parse stops the counting (broken), never panics. Not safe
// for concurrent use.
type respCounter struct {
	st       int
	line     []byte
	args     int64 // arguments left in the current array
	argIdx   int64
	skip     int64 // bulk bytes left, CRLF included
	dataLeft int64 // bulk data bytes left (skip minus the CRLF still due)
	name     []byte
	broken   bool
	onCmd    func(name []byte)
}

const (
	rsStart = iota
	rsArrayLen
	rsBulkHeader
	rsBulkLen
	rsBulkData
	rsInline
	rsBroken

	maxRESPLine = 64
	maxCmdName  = 32
)

func (c *respCounter) fail() { c.st, c.broken = rsBroken, true }

func (c *respCounter) emit() {
	if c.onCmd != nil {
		c.onCmd(asciiLower(c.name))
	}
	c.name = c.name[:0]
}

// asciiLower lower-cases ASCII letters only, so a name keeps its length
// (bytes.ToLower turns invalid UTF-8 into 3-byte U+FFFD, found by fuzzing).
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// feed consumes p.
func (c *respCounter) feed(p []byte) {
	for len(p) > 0 {
		switch c.st {
		case rsBroken:
			return
		case rsStart:
			c.line, c.name = c.line[:0], c.name[:0]
			if p[0] == '*' {
				c.st = rsArrayLen
				p = p[1:]
			} else {
				c.st = rsInline
			}
		case rsBulkHeader:
			if p[0] != '$' {
				c.fail()
				return
			}
			c.line = c.line[:0]
			c.st = rsBulkLen
			p = p[1:]
		case rsArrayLen, rsBulkLen, rsInline:
			i := bytes.IndexByte(p, '\n')
			chunk := p
			if i >= 0 {
				chunk = p[:i]
			}
			if room := maxRESPLine - len(c.line); len(chunk) > room {
				if c.st != rsInline {
					c.fail()
					return
				}
				chunk = chunk[:room] // an inline command's name is at its start
			}
			c.line = append(c.line, chunk...)
			if i < 0 {
				return
			}
			p = p[i+1:]
			line := bytes.TrimSuffix(c.line, []byte("\r"))
			switch c.st {
			case rsInline:
				if f := bytes.Fields(line); len(f) > 0 {
					c.name = append(c.name[:0], f[0][:min(len(f[0]), maxCmdName)]...)
					c.emit()
				}
				c.st = rsStart
			case rsArrayLen:
				n, err := strconv.ParseInt(string(line), 10, 64)
				switch {
				case err != nil || n > 1<<31:
					c.fail()
					return
				case n <= 0:
					c.st = rsStart // empty or null array: not a command
				default:
					c.args, c.argIdx, c.st = n, 0, rsBulkHeader
				}
			case rsBulkLen:
				n, err := strconv.ParseInt(string(line), 10, 64)
				if err != nil || n < -1 || n > 512<<20 {
					c.fail()
					return
				}
				if n == -1 {
					c.argDone()
					continue
				}
				c.skip, c.dataLeft, c.st = n+2, n, rsBulkData
			}
		case rsBulkData:
			take := min(c.skip, int64(len(p)))
			data := min(take, c.dataLeft)
			if c.argIdx == 0 {
				room := int64(maxCmdName - len(c.name))
				c.name = append(c.name, p[:min(data, max(room, 0))]...)
			}
			// The bytes after the data are (part of) the terminating CRLF;
			// skip-dataLeft of its two bytes were still due before this piece.
			from := 2 - (c.skip - c.dataLeft)
			if crlf := p[data:take]; !bytes.Equal(crlf, []byte("\r\n")[from:from+int64(len(crlf))]) {
				c.fail()
				return
			}
			c.dataLeft -= data
			c.skip -= take
			p = p[take:]
			if c.skip == 0 {
				c.argDone()
			}
		}
	}
}

func (c *respCounter) argDone() {
	c.argIdx++
	c.args--
	if c.args == 0 {
		c.emit()
		c.st = rsStart
	} else {
		c.st = rsBulkHeader
	}
}

// redisProxy is a TCP proxy in front of a Redis-protocol server that counts
// the commands clients send. Safe for concurrent use; Close stops it and
// waits for its goroutines.
type redisProxy struct {
	ln       net.Listener
	upstream string

	mu     sync.Mutex
	counts map[string]int64
	conns  map[net.Conn]struct{}
	broken int // connections whose stream could not be parsed
	wg     sync.WaitGroup
}

// startRedisProxy listens on a free loopback port and forwards to upstream.
func startRedisProxy(upstream string) (*redisProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("redis counting proxy: %w", err)
	}
	p := &redisProxy{ln: ln, upstream: upstream, counts: map[string]int64{}, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

func (p *redisProxy) addr() string { return p.ln.Addr().String() }

func (p *redisProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(c, up) })
	}
}

func (p *redisProxy) pipe(client, up net.Conn) {
	defer func() {
		client.Close()
		up.Close()
		p.mu.Lock()
		delete(p.conns, client)
		delete(p.conns, up)
		p.mu.Unlock()
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(client, up)
		client.Close()
	}()
	rc := &respCounter{onCmd: func(name []byte) {
		p.mu.Lock()
		p.counts[string(name)]++
		p.mu.Unlock()
	}}
	br := bufio.NewReaderSize(client, 32<<10)
	buf := make([]byte, 32<<10)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			rc.feed(buf[:n])
			if _, werr := up.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if rc.broken {
		p.mu.Lock()
		p.broken++
		p.mu.Unlock()
	}
	up.Close()
	<-done
}

func (p *redisProxy) commands(context.Context) (map[string]int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken > 0 {
		return nil, errors.New("redis counting proxy: a client stream could not be parsed; counts are incomplete")
	}
	out := make(map[string]int64, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out, nil
}

// close stops accepting, closes every connection and waits.
func (p *redisProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
