package store

import (
	"context"
	"testing"
)

func TestAppliedBucketIsTheNewestEffect(t *testing.T) {
	for _, v := range variants[:2] {
		t.Run(v.name, func(t *testing.T) {
			f := newFixture(t, v, true)
			ctx := context.Background()
			if _, ok, err := f.db.AppliedBucket(ctx, 1); err != nil || ok {
				t.Fatalf("got ok=%v err=%v for a post without effects, want none", ok, err)
			}
			update(t, f.db, func(ctx context.Context, tx Tx) error {
				return tx.AddEffects(ctx, []Effect{{Post: 1, Bucket: 10, Delta: 1}, {Post: 1, Bucket: 12, Delta: -1}, {Post: 2, Bucket: 99, Delta: 1}})
			})
			b, ok, err := f.db.AppliedBucket(ctx, 1)
			if err != nil || !ok || b != 12 {
				t.Fatalf("got %d ok=%v err=%v, want 12", b, ok, err)
			}
		})
	}
}
