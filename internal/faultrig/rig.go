package faultrig

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/likes-sidecar/likes/config"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// Secret is the HS256 secret every sidecar of a rig verifies tokens with.
const Secret = "faultrig-secret-0123456789-0123456789-0123456789"

// startBound bounds the start of one child process (until it answers).
const startBound = 30 * time.Second

// Config describes a rig. Start from [DefaultConfig].
type Config struct {
	// Sidecars is the number of `likes serve` processes.
	Sidecars int
	// Consumers is the number of `likes consume` processes in the group.
	Consumers int
	// Partitions of the like topic.
	Partitions int
	// Settings are configuration keys (config.Keys names) given to every
	// child process through its LIKES_ environment, on top of
	// [BaseSettings].
	Settings map[string]string
	// SidecarSettings are given to the sidecars only, on top of Settings.
	// An empty value unsets a key (auth.jwt_secret, to use another key
	// source).
	SidecarSettings map[string]string
}

// DefaultConfig is the rig of issue 7: 3 sidecars, 2 consumers, 4 partitions.
func DefaultConfig() Config {
	return Config{Sidecars: 3, Consumers: 2, Partitions: 4}
}

// Validate reports the first unusable field.
func (c Config) Validate() error {
	switch {
	case c.Sidecars < 1 || c.Sidecars > 16:
		return fmt.Errorf("faultrig: Sidecars must be between 1 and 16, got %d", c.Sidecars)
	case c.Consumers < 0 || c.Consumers > 16:
		return fmt.Errorf("faultrig: Consumers must be between 0 and 16, got %d", c.Consumers)
	case c.Partitions < 1:
		return fmt.Errorf("faultrig: Partitions must be at least 1, got %d", c.Partitions)
	}
	for _, m := range []map[string]string{c.Settings, c.SidecarSettings} {
		for k := range m {
			if !knownKey(k) {
				return fmt.Errorf("faultrig: %q is not a configuration key", k)
			}
		}
	}
	return nil
}

func knownKey(name string) bool {
	return slices.ContainsFunc(config.Keys, func(k config.Key) bool { return k.Name == name })
}

// BaseSettings are the rig's configuration for every child: 100 ms counter
// buckets with 200 ms lateness and 100 ms republication, so a count settles
// within about a second of the consumer catching up; a 100 ms count cache;
// a 2 s group session so that a killed consumer's partitions move quickly;
// short connect timeouts and backoffs, so outages end quickly too.
var BaseSettings = map[string]string{
	"counter.bucket":           "100ms",
	"counter.tail_span":        "30",
	"counter.lateness":         "200ms",
	"counter.tail_ttl":         "1m",
	"read.cache_ttl":           "100ms",
	"read.timeout":             "500ms",
	"kafka.session_timeout":    "2s",
	"kafka.heartbeat_interval": "200ms",
	"kafka.rebalance_timeout":  "3s",
	"consume.publish_interval": "100ms",
	"consume.batch_wait":       "20ms",
	"consume.retry_min":        "100ms",
	"consume.retry_max":        "1s",
	"db.connect_timeout":       "1s",
	"shutdown.timeout":         "5s",
	"log.level":                "info",
	"log.format":               "console",
}

// Rig is a running system on loopback: sidecars and consumers as child
// processes of the `likes` binary, a Kafka-protocol broker in a child
// process, a 3-master Redis Cluster, and a fresh PostgreSQL database reached
// through a [TCPProxy] that can cut it off. It is owned by the test that
// started it; everything stops at that test's cleanup.
//
// Methods taking a testing.TB must be called from the test goroutine.
// Observe, Client and the fault switches of the parts are safe for
// concurrent use.
type Rig struct {
	Config Config
	Bin    string
	Broker *Broker
	Redis  *testenv.RedisClusterServer
	// PG is the proxy in front of PostgreSQL; children connect through it.
	PG *TCPProxy
	// DBURL is the database URL the children use (through PG).
	DBURL string
	// DB is a direct pool to the database, for the checker.
	DB        *pgxpool.Pool
	Sidecars  []*Child
	Consumers []*Child
	Model     *Model

	t      testing.TB
	client *Client
}

// Start builds the `likes` binary (once per test process) and the broker,
// starts every part and waits until each answers. It fails the test if any
// part does not start within 30 s.
func Start(t testing.TB, cfg Config) *Rig {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := &Rig{Config: cfg, t: t, Model: NewModel()}
	t0 := time.Now()
	r.Bin = testenv.Build(t, "./cmd/likes")
	t1 := time.Now()
	r.Broker = startBroker(t, cfg.Partitions)
	t2 := time.Now()
	r.Redis = testenv.RedisCluster(t)
	t3 := time.Now()
	defer func() {
		t.Logf("rig: build %v, broker %v, redis %v, rest %v", t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), time.Since(t3))
	}()

	direct := testenv.Postgres(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	if r.PG, err = NewTCPProxy(u.Host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.PG.Close() })
	u.Host = r.PG.Addr()
	r.DBURL = u.String()
	ctx, cancel := context.WithTimeout(context.Background(), startBound)
	defer cancel()
	if r.DB, err = pgxpool.New(ctx, direct); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.DB.Close)
	if out, err := exec.CommandContext(ctx, r.Bin, "migrate", "--db-url", r.DBURL).CombinedOutput(); err != nil {
		t.Fatalf("likes migrate: %v\n%s", err, out)
	}

	for i := range cfg.Sidecars {
		c := r.newChild(t, fmt.Sprintf("sidecar-%d", i+1), true)
		r.Sidecars = append(r.Sidecars, c)
	}
	for i := range cfg.Consumers {
		r.Consumers = append(r.Consumers, r.newChild(t, fmt.Sprintf("consumer-%d", i+1), false))
	}
	for _, c := range append(slices.Clone(r.Sidecars), r.Consumers...) {
		c.start(t)
	}
	for _, c := range append(slices.Clone(r.Sidecars), r.Consumers...) {
		c.waitReady(t)
	}
	return r
}

// AddConsumer starts one more consumer in the group and waits until it
// answers.
func (r *Rig) AddConsumer(t testing.TB) *Child {
	t.Helper()
	c := r.newChild(t, fmt.Sprintf("consumer-%d", len(r.Consumers)+1), false)
	r.Consumers = append(r.Consumers, c)
	c.Start(t)
	return c
}

// Targets returns the sidecars as load targets.
func (r *Rig) Targets() []Target {
	ts := make([]Target, len(r.Sidecars))
	for i, s := range r.Sidecars {
		ts[i] = Target{Name: s.Name, Base: "http://" + s.Addr}
	}
	return ts
}

// Client returns the rig's client (created on first use, closed at
// cleanup): it records every write in the rig's model.
func (r *Rig) Client() *Client {
	if r.client == nil {
		r.client = NewClient(r.Targets(), Secret, r.Model, 3*time.Second, 64)
		r.t.Cleanup(r.client.Close)
	}
	return r.client
}

// env returns the LIKES_ environment of a child.
func (r *Rig) env(sidecar bool) []string {
	set := map[string]string{
		"redis.addrs":     strings.Join(r.Redis.Addrs, ","),
		"kafka.brokers":   r.Broker.Addr,
		"db.url":          r.DBURL,
		"auth.jwt_secret": Secret,
	}
	for k, v := range BaseSettings {
		set[k] = v
	}
	for k, v := range r.Config.Settings {
		set[k] = v
	}
	if sidecar {
		for k, v := range r.Config.SidecarSettings {
			set[k] = v
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIKES_") || strings.HasPrefix(kv, "LIKES_TEST_") {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		if v == "" {
			continue // "" unsets a key of the base settings
		}
		env = append(env, config.Key{Name: k}.Env()+"="+v)
	}
	slices.Sort(env)
	return env
}

// Child is a `likes serve` or `likes consume` process that can be killed
// and started again on the same address.
type Child struct {
	Name string
	// Addr is the API address of a sidecar, the admin address of a consumer.
	Addr    string
	Sidecar bool

	rig     *Rig
	args    []string
	env     []string
	mu      sync.Mutex
	proc    *testenv.Process
	started bool       // it was ready once: restarts keep its address
	t       testing.TB // the owner of the processes
}

func (r *Rig) newChild(t testing.TB, name string, sidecar bool) *Child {
	t.Helper()
	c := &Child{Name: name, Sidecar: sidecar, rig: r, t: r.t}
	c.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
	if sidecar {
		c.args = []string{"serve", "--listen", c.Addr, "--sidecar-id", name}
	} else {
		c.args = []string{"consume", "--admin-listen", c.Addr}
	}
	c.env = r.env(sidecar)
	return c
}

// Start starts the process (again) and waits until it answers: a sidecar's
// /readyz (Redis and the log reachable), a consumer's /healthz.
//
// Its port was picked free, but another process (an outgoing connection's
// ephemeral port, a server of a test running in parallel) may take it
// before the child binds it. A child that exits with "address already in
// use" is started again: on a new port the first time (nobody holds the
// address yet), on the same port after a pause when it is restarted (its
// clients know the address).
func (c *Child) Start(t testing.TB) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c.start(t)
		err := c.waitReady(t)
		if err == nil {
			c.mu.Lock()
			c.started = true
			c.mu.Unlock()
			return
		}
		if attempt == 5 {
			t.Fatalf("faultrig: %s: %v after %d attempts", c.Name, err, attempt)
		}
		t.Logf("faultrig: %s: %v; starting it again", c.Name, err)
		c.mu.Lock()
		first := !c.started
		c.mu.Unlock()
		if first {
			c.setAddr(net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t))))
		} else {
			time.Sleep(300 * time.Millisecond)
		}
	}
}

// errAddrTaken is what waitReady returns when the child could not bind its
// address.
var errAddrTaken = errors.New("its address was taken by another process")

func (c *Child) start(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil && !c.proc.Exited() {
		t.Fatalf("faultrig: %s is already running", c.Name)
	}
	cmd := exec.Command(c.rig.Bin, c.args...)
	cmd.Env = c.env
	c.proc = testenv.StartProcess(c.t, cmd)
}

// waitReady waits until the child answers on its address, or returns
// errAddrTaken when it exited unable to bind it. A sidecar must also have
// logged that it is serving, so that an answer from another process that
// took its port is not mistaken for its own.
func (c *Child) waitReady(t testing.TB) error {
	t.Helper()
	path, marker := "/healthz", ""
	if c.Sidecar {
		path, marker = "/readyz", "likes serve ready"
	}
	p := c.process()
	deadline := time.Now().Add(startBound)
	for {
		if p.Exited() {
			if strings.Contains(p.Output(), "address already in use") {
				return errAddrTaken
			}
			t.Fatalf("faultrig: %s exited while starting: %v\n%s", c.Name, p.Wait(), p.Output())
		}
		err := httpOK("http://" + c.Addr + path)
		if err == nil && marker != "" && !strings.Contains(p.Output(), marker) {
			err = fmt.Errorf("%s answers but the child has not logged %q", c.Addr, marker)
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			t.Fatalf("faultrig: %s not ready within %v: %v\n%s", c.Name, startBound, err, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// setAddr moves a child that never started to addr.
func (c *Child) setAddr(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, a := range c.args {
		if a == c.Addr {
			c.args[i] = addr
		}
	}
	c.Addr = addr
}

func (c *Child) process() *testenv.Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc
}

// Kill sends SIGKILL and waits until the process is gone.
func (c *Child) Kill() { c.process().Kill() }

// Stop sends SIGTERM (a graceful drain) and waits up to bound for the
// process to exit, returning its exit error.
func (c *Child) Stop(bound time.Duration) error {
	p := c.process()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	return p.WaitTimeout(bound)
}

// Running reports whether the process is alive.
func (c *Child) Running() bool { return !c.process().Exited() }

// Pid returns the current process id.
func (c *Child) Pid() int { return c.process().Pid() }

// Output returns the process's recent output.
func (c *Child) Output() string { return c.process().Output() }

// Metric scrapes /metrics and returns the sum of the samples of name over
// their labels (0 if absent) and the number of samples.
func (c *Child) Metric(name string) (sum float64, samples int, err error) {
	page, err := c.MetricsPage()
	if err != nil {
		return 0, 0, err
	}
	return sumMetric(strings.NewReader(page), name)
}

// MetricsPage returns the child's /metrics page (Prometheus text format).
func (c *Child) MetricsPage() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.Addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// sumMetric adds up the samples of one metric in the Prometheus text format.
func sumMetric(r io.Reader, name string) (sum float64, samples int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // another metric with this prefix
		}
		if i := strings.LastIndexByte(rest, '}'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("metric %s: %q: %w", name, line, err)
		}
		sum += v
		samples++
	}
	return sum, samples, sc.Err()
}

// Memory returns the process's VmHWM (peak resident set) and VmRSS, in
// bytes, from /proc/<pid>/status.
func (c *Child) Memory() (hwm, rss int64, err error) {
	return procMemory(c.Pid())
}

func procMemory(pid int) (hwm, rss int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		f := strings.Fields(v) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %q", pid, k, v)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if k == "VmHWM" {
			hwm = n << 10
		} else {
			rss = n << 10
		}
	}
	if hwm == 0 || rss == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmHWM/VmRSS", pid)
	}
	return hwm, rss, sc.Err()
}

func httpOK(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	return nil
}

// Broker is the Kafka-protocol broker process (internal/faultrig/cmd/faultbroker).
type Broker struct {
	Addr    string // Kafka bootstrap address
	Control string // control HTTP address
	proc    *testenv.Process
}

func startBroker(t testing.TB, partitions int) *Broker {
	t.Helper()
	bin := testenv.Build(t, "./internal/faultrig/cmd/faultbroker")
	b := &Broker{
		Addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t))),
		Control: net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t))),
	}
	cmd := exec.Command(bin, "--listen", b.Addr, "--control", b.Control, "--partitions", strconv.Itoa(partitions))
	b.proc = testenv.StartProcess(t, cmd)
	testenv.Eventually(t, startBound, func() error {
		if b.proc.Exited() {
			t.Fatalf("faultrig: broker exited while starting: %v\n%s", b.proc.Wait(), b.proc.Output())
		}
		if err := httpOK("http://" + b.Control + "/healthz"); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", b.Addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return b
}

// Cut cuts the broker off the network: live connections are closed, new ones
// black-holed.
func (b *Broker) Cut() error { return b.control("cut") }

// Restore ends a Cut.
func (b *Broker) Restore() error { return b.control("restore") }

// Slow makes every produce request take perRecord per record it carries
// (0: full speed again): the broker handles one request at a time, so its
// throughput is capped at 1/perRecord records per second.
func (b *Broker) Slow(perRecord time.Duration) error {
	return b.control("slow?per_record=" + perRecord.String())
}

func (b *Broker) control(what string) error {
	resp, err := http.Post("http://"+b.Control+"/"+what, "text/plain", nil)
	if err != nil {
		return fmt.Errorf("broker %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("broker %s: status %d", what, resp.StatusCode)
	}
	return nil
}
