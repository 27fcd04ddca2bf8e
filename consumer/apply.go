package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/likes-sidecar/likes/store"
)

// errRewound means the database's next offset for a partition is below the
// position the fetcher read from, so records in between were never seen by
// this fetcher (the database was restored from a backup, or a bug). The
// fetcher restarts from the database's offset; nothing was written.
var errRewound = errors.New("stored offset is behind the fetcher's read position")

// applied is what one committed batch did.
type applied struct {
	Next        int64          // the partition's next offset after the transaction
	Fresh       int            // records at or above the stored offset: applied or skipped now
	Redelivered int            // records below it: dropped, already applied
	Events      int            // valid events applied
	Skipped     map[string]int // fresh records skipped, per reason
	Inserted    int            // like rows inserted
	Deleted     int            // like rows deleted
	Net         int64          // net change of the like count over all posts
	Rows        []store.CountRow
}

// applyBatch is one batch's transaction, run inside [store.DB.Update]:
//
//  1. lock the partition's offset row and read its next offset N;
//  2. drop the records below N (already applied);
//  3. collapse the rest per (post, user) in log order; insert the keys whose
//     last op is like, delete those whose last op is unlike, and learn from
//     the answers each key's state before the batch;
//  4. replay each key's events from that state to give every event its
//     effect (+1, −1, 0), attributed to the event's bucket (capped at
//     maxBucket);
//  5. add the net per post to like_counts (every post of the batch gets a
//     new version), the effects per (post, bucket) to like_effects, and set
//     the next offset past the batch.
//
// Everything commits or nothing does, so an offset's effects are in the
// database iff the stored next offset is past it: see the package doc.
func applyBatch(ctx context.Context, tx store.Tx, topic string, b *batch, now time.Time, maxBucket int64) (applied, error) {
	var res applied
	p := b.Partition
	offs, err := tx.LockOffsets(ctx, topic, []int32{p})
	if err != nil {
		return res, fmt.Errorf("lock offset of partition %d: %w", p, err)
	}
	next := offs[p]
	if b.Reset && next == b.ResetFrom {
		next = b.From
	}
	if next < b.From {
		return res, fmt.Errorf("partition %d: stored next offset %d, read from %d: %w", p, next, b.From, errRewound)
	}
	res.Next = next
	fresh, redelivered := b.split(next)
	res.Redelivered = redelivered
	if len(fresh) == 0 {
		return res, nil
	}
	res.Fresh = len(fresh)
	evs, skipped := validEvents(fresh)
	res.Skipped = skipped
	res.Events = len(evs)

	if len(evs) > 0 {
		f := newFold(evs)
		likes, likeKeys, unlikes, unlikeKeys := f.writes(now)
		inserted, err := tx.InsertLikes(ctx, likes)
		if err != nil {
			return res, fmt.Errorf("partition %d: insert %d likes: %w", p, len(likes), err)
		}
		deleted, err := tx.DeleteLikes(ctx, unlikes)
		if err != nil {
			return res, fmt.Errorf("partition %d: delete %d likes: %w", p, len(unlikes), err)
		}
		if len(inserted) != len(likes) || len(deleted) != len(unlikes) {
			return res, fmt.Errorf("partition %d: store answered %d/%d inserts and %d/%d deletes", p, len(inserted), len(likes), len(deleted), len(unlikes))
		}
		res.Inserted, res.Deleted = countTrue(inserted), countTrue(deleted)
		eff := f.simulate(f.initialState(likeKeys, inserted, unlikeKeys, deleted))
		deltas, effects := f.attribute(eff, maxBucket)
		for _, d := range deltas {
			res.Net += d.Delta
		}
		if res.Rows, err = tx.AddCounts(ctx, deltas); err != nil {
			return res, fmt.Errorf("partition %d: add counts of %d posts: %w", p, len(deltas), err)
		}
		if err := tx.AddEffects(ctx, effects); err != nil {
			return res, fmt.Errorf("partition %d: add %d effects: %w", p, len(effects), err)
		}
	}
	res.Next = fresh[len(fresh)-1].Offset + 1
	if err := tx.SetOffsets(ctx, topic, map[int32]int64{p: res.Next}); err != nil {
		return res, fmt.Errorf("partition %d: set next offset %d: %w", p, res.Next, err)
	}
	return res, nil
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
