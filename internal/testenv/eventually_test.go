package testenv

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEventually(t *testing.T) {
	t.Run("it returns once the condition holds", func(t *testing.T) {
		calls := 0
		f := runFake(t, func(tb testing.TB) {
			Eventually(tb, 5*time.Second, func() error {
				calls++
				if calls < 3 {
					return errors.New("not yet")
				}
				return nil
			})
		})
		if len(f.fatals) != 0 {
			t.Errorf("got fatals %q, want none", f.fatals)
		}
		if calls != 3 {
			t.Errorf("got %d calls, want 3", calls)
		}
	})

	t.Run("on timeout it fails with the last error", func(t *testing.T) {
		calls := 0
		start := time.Now()
		f := runFake(t, func(tb testing.TB) {
			Eventually(tb, 100*time.Millisecond, func() error {
				calls++
				return errors.New("attempt " + strings.Repeat("x", calls))
			})
		})
		if len(f.fatals) != 1 {
			t.Fatalf("got %d fatals, want 1", len(f.fatals))
		}
		want := "attempt " + strings.Repeat("x", calls)
		if !strings.HasSuffix(f.fatals[0], want) {
			t.Errorf("got message %q, want it to end with the last error %q", f.fatals[0], want)
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Errorf("got failure after %v, want at least the 100ms timeout", d)
		}
		if calls < 3 || calls > 10 {
			t.Errorf("got %d calls in 100ms, want polling every ~20ms", calls)
		}
	})
}
