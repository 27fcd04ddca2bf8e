// Package sidecar assembles `likes serve` from its parts — auth, dedupcache,
// coalescer, eventlog, counts, store, proxy — and runs it: the HTTP API,
// health and readiness probes, Prometheus metrics, and a graceful drain.
//
// # Drain (SIGTERM/SIGINT)
//
//  1. /readyz turns 503 so the orchestrator stops routing new traffic;
//  2. the HTTP servers stop accepting and wait for in-flight requests;
//  3. the coalescer publishes every queued batch and writes every counted
//     delta to Redis;
//  4. clients close. All of it within shutdown.timeout.
//
// Nothing acknowledged is lost at any step: an acknowledged like is in the log
// before its 200 is written, and counter deltas not written before the
// deadline are still counted by the consumer from the log.
package sidecar
