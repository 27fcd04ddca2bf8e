package dedupcache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/likes-sidecar/likes/pacing"
)

// TestBatcherPacing: under load a paced batcher holds a group up to the
// linger, so calls stay few as the rate grows; below the threshold, and
// without pacing, a request is sent at once.
func TestBatcherPacing(t *testing.T) {
	for _, tc := range []struct {
		name               string
		pace               pacing.Config
		rate               int
		minCalls, maxCalls int64
		maxWait            time.Duration
	}{
		{"20k/s unpaced", pacing.Config{}, 20000, 19000, 20000, 0},
		{"20k/s paced 5ms", pacing.Config{Linger: 5 * time.Millisecond, Above: 5000}, 20000, 150, 400, 5 * time.Millisecond},
		{"1k/s paced 5ms", pacing.Config{Linger: 5 * time.Millisecond, Above: 5000}, 1000, 1000, 1000, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int64
				b := newBatcher(func(_ context.Context, qs []int) ([]int, error) {
					calls.Add(1)
					return qs, nil
				}, 1000, 100000, 4)
				b.pace = pacing.New(tc.pace)
				var wg sync.WaitGroup
				var mu sync.Mutex
				var worst time.Duration
				every := time.Second / time.Duration(tc.rate)
				for i := range tc.rate {
					wg.Go(func() {
						start := time.Now()
						r, err := b.do(context.Background(), i)
						if err != nil || r != i {
							t.Errorf("got %d, %v, want %d", r, err, i)
						}
						mu.Lock()
						worst = max(worst, time.Since(start))
						mu.Unlock()
					})
					time.Sleep(every)
				}
				wg.Wait()
				if n := calls.Load(); n < tc.minCalls || n > tc.maxCalls {
					t.Errorf("got %d calls, want between %d and %d", n, tc.minCalls, tc.maxCalls)
				}
				if worst > tc.maxWait {
					t.Errorf("got an answer after %v, want at most %v", worst, tc.maxWait)
				}
			})
		})
	}
}
