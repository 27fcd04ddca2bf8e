//go:build race

package envoy

// raceEnabled reports whether the test binary was built with -race (which
// makes sync.Pool drop items at random, so allocation counts are noise).
const raceEnabled = true
