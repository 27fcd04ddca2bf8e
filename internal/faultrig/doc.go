// Package faultrig proves the invariants of likes under faults, scale-out and
// hostile input (issue 7). It starts a whole system as real processes on
// loopback, drives it with a load whose every answer is modelled, breaks
// things, and checks afterwards that nothing acknowledged was lost and nothing
// was counted twice.
//
// # The rig
//
// [Start] builds the `likes` binary (internal/testenv.Build, -race when the
// tests are) and starts, as child processes: Config.Sidecars `likes serve`
// (3), Config.Consumers `likes consume` in one group (2), a Kafka-protocol
// broker (cmd/faultbroker: kfake in a process of its own, with a control
// port that cuts it off the network and restores it, the log kept in
// memory meanwhile, or slows its produce requests to cap its throughput),
// and a 3-master Redis Cluster (testenv.RedisCluster);
// and a fresh PostgreSQL database (testenv.Postgres) that the children reach
// through a [TCPProxy], so "PostgreSQL is unreachable" is a cut of the
// proxy, not of the machine's server. Every child gets its configuration
// through LIKES_ variables: [BaseSettings] (100 ms counter buckets, 200 ms
// lateness, a 2 s group session, short backoffs) plus the test's own.
// Children can be killed (SIGKILL), stopped (SIGTERM) and started again on
// the same address; their /metrics are scraped and their /proc status read.
//
// # The model
//
// The [Client] sends likes and unlikes as an app would and records in a
// [Model] what each answer says about the log ([ClassifyWrite]): Acked (200:
// the event is in the log), NoOp (409, 404, 4xx, and 503s that are refused
// before the event is queued: overloaded, dedup_unavailable, shutting_down;
// a connection that could not be opened) or Unknown (503 log_unavailable, a
// timeout, a connection lost after sending: it may be in the log, now or
// later). The [Load] driver gives each user to one worker, so one pair's
// requests never overlap; [Wave] sends the same op for the same users through
// every sidecar at once. Either way the model knows, per (post, user), the
// set of final states the database may end in: the state after the last
// acknowledged event, and the state of each Unknown event (it may land
// after anything). A pair with one possible state is certain.
//
// # The checker
//
// [Compare] holds an [Observation] (like rows and like_counts read directly
// from PostgreSQL, and the count every sidecar answers over HTTP) against
// the model: a certain pair in the other state is a lost acknowledged like
// or a phantom write; a count that differs from the rows is a mismatch
// (double- or under-counted). [Rig.Converge] polls until there is no
// violation, within a stated bound, and fails the test with the last report
// otherwise, so a scenario's verdict is "acknowledged likes lost: 0, double
// counts: 0", or the first violations.
//
// # Reuse
//
// Model, Compare, Client, Load, Wave, Summarize and TCPProxy do not need a
// testing.TB: `likes bench` or another harness can drive and judge a system
// it started itself with them. Start and the methods that wait take a
// testing.TB and belong to tests.
//
// # Concurrency
//
// Model, Client, Results and TCPProxy are safe for concurrent use. A Rig,
// its Children and its Broker are driven from the test goroutine, except
// Observe, Client, Child.Metric/Memory/Running/Kill and Broker.Cut/Restore/Slow,
// which are safe to call from any goroutine.
package faultrig
