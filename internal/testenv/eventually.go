package testenv

import (
	"testing"
	"time"
)

// pollInterval is how often [Eventually] calls its condition.
const pollInterval = 20 * time.Millisecond

// Eventually calls f every 20ms until it returns nil, and fails the test if
// it has not done so within timeout, reporting f's last error. f is called at
// least once, and once more at the deadline. It must be called from the test
// goroutine (it may call t.Fatal); f runs on that goroutine too.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	if err := poll(timeout, f); err != nil {
		t.Fatalf("not true within %v: %v", timeout, err)
	}
}

// poll is Eventually without the test: it returns nil as soon as f does, or
// f's last error once timeout has passed.
func poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return err
		}
		<-tick.C
	}
}
