// Package testenv starts the real servers that the integration tests of
// likes run against: redis-server processes (a single node or a 3-master
// Redis Cluster), an in-process Kafka-protocol broker (kfake) reached over
// loopback TCP, and a fresh database on the machine's PostgreSQL. It also
// holds the small helpers those tests share: [Eventually] (poll, never
// sleep-and-hope), [FreePort], [Build] (compile a main package once per test
// process) and [Process] (a child process whose output is logged when the
// test fails).
//
// It is imported only from _test.go files. Nothing here is a mock: every
// helper starts or connects to the real thing, and every resource is
// released by t.Cleanup, so a test never has to remember to stop a server.
// The one stand-in is a bloom module ([RedisWithBloom]) loaded into a real
// redis-server, because no bloom module is packaged for this machine.
//
// # Design choices
//
//   - Missing prerequisites fail, they never skip: a test that silently
//     skips when redis-server or PostgreSQL is absent would let CI pass
//     without testing anything. The failure message says to run
//     scripts/test.sh, which installs and starts what is missing.
//   - Ports are picked by the kernel (listen on port 0, close, reuse the
//     number). That leaves a window in which another process may take the
//     port, so a server that fails with "address already in use" is retried
//     on a fresh port. Cluster nodes also need port+10000 free for the
//     cluster bus; they are drawn from a range where that sum stays valid and
//     both ports are checked.
//   - Redis runs with no persistence (--save "" --appendonly no), so
//     [RedisServer.Kill] followed by [RedisServer.Start] is a Redis restart
//     that lost its data: exactly the fault the count-convergence invariant
//     must survive.
//   - Kafka is kfake with a single broker, seeded topics and a low minimum
//     group session timeout (so fault tests can use short session timeouts).
//     Auto topic creation is off: a test that publishes to a topic it did not
//     ask for is a bug worth seeing.
//   - PostgreSQL databases are named likes_t_<random hex> and dropped
//     WITH (FORCE) at cleanup, so parallel test packages never share state
//     and leftover connections cannot block the drop.
//
// # Concurrency
//
// The helpers that take a testing.TB must be called from the goroutine
// running the test (they may call t.Fatal). Methods that do not take a
// testing.TB ([RedisServer.Kill], [Process.Signal], [Process.Wait], ...) are
// safe for concurrent use. The only package-level state is the cache of
// [Build], a map guarded by a mutex: binaries are built once per test
// process, which is what keeps fault tests that start many processes fast.
package testenv
