// Package bench is the benchmark harness behind `likes bench`: it drives a
// like API with an open-loop load, measures what the system under test did,
// checks that its count is exactly right afterwards, and renders the
// results as a table, JSON and a self-contained HTML report.
//
// # The load
//
// Arrivals follow a constant schedule ([Schedule]): request i is intended
// to start at i/rate. Latency is measured from that intended time, never
// from when the generator managed to send, so a stall of the system (or of
// the generator) shows up in the percentiles instead of silently lowering
// the offered rate: coordinated omission cannot hide it. Requests go out on
// a bounded number of keep-alive connections (Config.Connections), each
// owned by one worker with a short queue; one user's writes always go to
// the same worker, so they are sent in order (churn depends on it). When
// every queue is full the pacer waits and the late requests carry their
// lateness; what it could not send by the scheduled end plus a second is
// counted as not_sent.
//
// The generator speaks HTTP/1.1 itself (client.go): net/http's client costs
// about as much CPU per request as the server it measures, which matters on
// a two-core machine that runs everything. Bearer tokens (HS256, byte for
// byte what auth.Sign makes) are minted for every user before any clock
// starts, so signing is not part of the measured path.
//
// Scenarios: celebrity (one post, distinct users, Config.DupRatio repeats),
// steady (Zipf-popular posts, reads:writes 10:1), churn (likes and unlikes
// by a pool of users on one post).
//
// # Designs
//
// Each design runs on a fresh system behind the same HTTP contract, under
// the same schedule, one after the other in one invocation:
//
//   - likes: the real sidecar (sidecar.Build, served on loopback) and the
//     real consumer, in this process;
//   - naive-db: one INSERT … ON CONFLICT per like, COUNT(*) per read;
//   - naive-redis: SADD + INCR on one key per like, GET per read;
//   - bare-http: 200 at once, nothing else: the ceiling of HTTP plus this
//     generator on this machine.
//
// With no servers given they run on the embedded stand-ins of package
// devstack (miniredis, kfake, SQLite) and every report says so. With
// Config.RedisAddrs and Config.DBURL they all use that redis-server and
// database (the Kafka broker stays an embedded kfake: there is no Kafka on
// the benchmark machine). With Config.Targets the load goes to running
// sidecars and only what they expose is reported. Post ids are unique per
// design run (derived from the clock), and the likes design uses a fresh
// topic and consumer group, so runs against the same servers never mix.
//
// # Figures
//
// Per design: likes/s and reads/s answered; latency percentiles (HDR
// histograms, 3 significant digits, per interval 2) for writes and reads;
// status counts; Redis commands in total, per like and per second, counted
// two ways (redisstats.go): sent by the clients, by a counting RESP proxy in
// front of miniredis or of a single redis-server, and executed by Redis,
// from INFO commandstats deltas, which count the calls inside Lua scripts
// too; log publishes and events
// per publish (likes_coalescer_log_batch_events); database rows written
// per second; staleness, ack → visible in the count, sampled a few times a
// second; resident memory. Every figure counts all clients of the design
// (the sidecar's count reads and the consumer's publications included).
//
// # Verdict
//
// After the load the benchmark waits for the system to settle (the
// consumer caught up with the log), then polls until, for every post
// written, count = durable record (database rows, or the likers set) and
// that record lies within what the answers imply: at least the users
// acknowledged, at most those plus the users whose requests got no
// definitive answer (503, timeout), which may or may not have taken effect.
// It must hold twice in a row. Otherwise the verdict is FAIL, [Run] returns
// [ErrVerdict] and the command exits non-zero.
//
// # Concurrency
//
// [Run] owns every goroutine it starts (pacer, workers, monitor, staleness
// reader, the systems' servers) and stops them before it returns. Nothing
// here is global: two Runs with different Envs may run at once (though they
// would share the machine's CPUs, which is rarely what one wants).
package bench
