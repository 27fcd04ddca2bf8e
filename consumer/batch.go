package consumer

import (
	"errors"
	"time"

	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/event"
)

// Reasons a record is skipped (label values of likes_consumer_skipped_total).
const (
	skipMalformed = "malformed" // not a well-formed version-1 event
	skipVersion   = "version"   // an event of a format version this build does not read
)

// record is one log record of a batch, decoded.
type record struct {
	Offset int64
	Event  event.Event
	Skip   string // "" for a valid event, else why it is skipped
	Err    error  // the decode error of a skipped record
}

// decodeRecord decodes a record value. A record that is not a valid event is
// kept with its reason, so that its offset still advances.
func decodeRecord(offset int64, value []byte) record {
	e, err := event.Decode(value)
	switch {
	case err == nil:
		return record{Offset: offset, Event: e}
	case errors.Is(err, event.ErrVersion):
		return record{Offset: offset, Skip: skipVersion, Err: err}
	default:
		return record{Offset: offset, Skip: skipMalformed, Err: err}
	}
}

// batch is what a partition's fetcher hands to one transaction: records in
// offset order, read from position From on.
type batch struct {
	Partition int32
	// From is the fetcher's read position when the batch began: the offset
	// it asked the log for. Records may start above it (the log may have
	// gaps) but never below.
	From int64
	// Records in strictly increasing offset order; never empty.
	Records []record
	// HighWater is the partition's high watermark as of the last record.
	HighWater int64
	// Reset, when true, means the database's next offset for the partition
	// was found beyond the end of the log (the topic was recreated, e.g. the
	// in-memory broker of likes dev restarted): the transaction moves the
	// stored offset back to From if it still equals ResetFrom.
	Reset     bool
	ResetFrom int64
}

// End is the offset after the batch's last record: the partition's next
// offset once the batch is committed.
func (b *batch) End() int64 { return b.Records[len(b.Records)-1].Offset + 1 }

// split returns the records at or above offset next: those the database has
// not seen. Records below it were applied by an earlier transaction (a
// redelivery, a retry whose commit had in fact succeeded, or another
// consumer of the same partition).
func (b *batch) split(next int64) (fresh []record, redelivered int) {
	i := 0
	for i < len(b.Records) && b.Records[i].Offset < next {
		i++
	}
	return b.Records[i:], i
}

// validEvents returns the events of the records that are not skipped, and
// the number skipped per reason.
func validEvents(recs []record) (evs []event.Event, skipped map[string]int) {
	evs = make([]event.Event, 0, len(recs))
	for i := range recs {
		if recs[i].Skip != "" {
			if skipped == nil {
				skipped = make(map[string]int, 2)
			}
			skipped[recs[i].Skip]++
			continue
		}
		evs = append(evs, recs[i].Event)
	}
	return evs, skipped
}

// capBucket is the newest bucket an event's effect is attributed to when
// consumed at now: TailSpan buckets ahead of now. A sidecar whose clock runs
// further ahead wrote its speculative increment to a tail key no read looks
// at yet; attributing the effect to the capped bucket makes the watermark
// pass it, and so the base include it, within a bounded time of the
// consumer's clock instead of whenever the bad clock's bucket comes.
func capBucket(cfg counts.Config, now time.Time) int64 {
	return counts.BucketOf(now, cfg.Bucket) + int64(cfg.TailSpan)
}

// markCap is the newest bucket a mark holds a post open for, given the
// attribution cap maxBucket (see [capBucket]). An event whose bucket is
// above the cap has its effect in the base once W passes the cap, but its
// sidecar's INCRBY sits in the tail key of its own bucket, which every read
// counts once that bucket is in its window and above the stored W: the post
// must stay open, and W keep advancing, until W passes the event's own
// bucket, or the like is counted twice while that bucket is in the read
// window. Beyond the tail TTL (and
// the read window) from now, that key has expired before any read sees it.
func markCap(cfg counts.Config, maxBucket int64) int64 {
	return maxBucket + int64(cfg.TailTTL/cfg.Bucket) + 1
}
