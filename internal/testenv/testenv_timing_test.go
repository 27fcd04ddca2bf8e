package testenv

import (
	"testing"
)

// The benchmarks measure how long one environment takes to start and to be
// torn down, which is what every integration test pays.

func benchmarkStart(b *testing.B, start func(tb testing.TB)) {
	b.ReportAllocs()
	for b.Loop() {
		if f := runFake(b, start); f.Failed() {
			b.Fatalf("start failed: %q %q", f.fatals, f.errors)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envs/s")
}

func BenchmarkRedis(b *testing.B) {
	benchmarkStart(b, func(tb testing.TB) { Redis(tb) })
}

func BenchmarkRedisRestart(b *testing.B) {
	s := Redis(b)
	b.ReportAllocs()
	for b.Loop() {
		s.Kill()
		s.Start(b)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "restarts/s")
}

func BenchmarkRedisCluster(b *testing.B) {
	benchmarkStart(b, func(tb testing.TB) { RedisCluster(tb) })
}

func BenchmarkKafka(b *testing.B) {
	benchmarkStart(b, func(tb testing.TB) { Kafka(tb, 4, "like_events") })
}

func BenchmarkPostgres(b *testing.B) {
	benchmarkStart(b, func(tb testing.TB) { Postgres(tb) })
}
