//go:build race

package faultrig

// raceEnabled reports whether this binary, and so the child binaries that
// internal/testenv.Build makes for it, were built with -race.
const raceEnabled = true
