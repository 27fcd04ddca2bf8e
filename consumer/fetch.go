package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/likes-sidecar/likes/event"
	"github.com/likes-sidecar/likes/store"
)

// runPartition owns partition p for one generation: it consumes until ctx
// is done, restarting from the database's offset after any error.
// kafkaOffset is the group's committed offset at assignment (negative when
// there is none): the settled offset of the previous owner.
func (c *Consumer) runPartition(ctx context.Context, p int32, kafkaOffset int64) {
	settledFrom := kafkaOffset
	wait := c.cfg.RetryMin
	for {
		progressed, err := c.consumePartition(ctx, p, settledFrom)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			wait = c.cfg.RetryMin
		}
		c.logLimited(fmt.Sprint("partition-", p), "partition fetcher failed; restarting from the database's offset",
			zap.Int32("partition", p), zap.Duration("backoff", wait), zap.Error(err))
		if !sleep(ctx, wait) {
			return
		}
		wait = min(2*wait, c.cfg.RetryMax)
		if s, ok := c.tr.settled(p); ok {
			settledFrom = s
		}
	}
}

// consumePartition reads partition p from the offset stored in the
// database, applies it batch by batch, and returns when ctx is done or on
// an error that needs a fresh start. settledFrom is the offset below which
// the previous owner (or this fetcher's previous run) settled everything in
// Redis; the records from there to the database's offset are re-read first
// so that their posts get published (see recoverRange), all of them, in
// chunks the tracker has room for. When settledFrom is unknown (negative:
// the group has no committed offset), the re-read looks back at most
// RecoverMax records.
func (c *Consumer) consumePartition(ctx context.Context, p int32, settledFrom int64) (progressed bool, err error) {
	// The database's offset first, then the log's bounds: the stored offset
	// only ever names records the log had, so stored > high watermark read
	// afterwards means the log is not the one the offset was stored for.
	stored, err := c.storedOffset(ctx, p)
	if err != nil {
		return false, err
	}
	first, high, err := c.bounds(ctx, p)
	if err != nil {
		return false, err
	}
	if stored > high {
		// A new partition leader may briefly report a stale high
		// watermark; a reset on that would re-read the whole log. Confirm.
		if !sleep(ctx, resetConfirm) {
			return false, ctx.Err()
		}
		if first, high, err = c.bounds(ctx, p); err != nil {
			return false, err
		}
	}
	start, reset := stored, false
	if stored > high {
		start, reset = first, true
		c.log.Error("the database's offset is beyond the end of the log: the topic was recreated (or truncated); consuming the new log from its start",
			zap.Int32("partition", p), zap.Int64("stored_next", stored), zap.Int64("log_first", first), zap.Int64("log_end", high))
	}

	replayFrom := stored
	switch {
	case reset || settledFrom >= stored:
	case settledFrom >= 0:
		// Exactly what the previous owner (or this fetcher's previous
		// run) left unsettled: all of it is re-read (recoverRange goes as
		// far as the tracker has room and leaves the rest to the overflow
		// recovery below).
		replayFrom = max(settledFrom, first)
		if settledFrom < first {
			c.log.Warn("part of the unsettled range is gone from the log; its posts settle when next touched or when their bases expire",
				zap.Int32("partition", p), zap.Int64("settled", settledFrom), zap.Int64("log_first", first), zap.Int64("stored_next", stored))
		}
	default: // the group has no committed offset: look back as far as allowed
		replayFrom = max(stored-c.cfg.RecoverMax, first, 0)
	}
	c.tr.startPartition(p, min(replayFrom, start))
	// After a re-read that stopped early (see recoverRange), the next one
	// waits recoverWait, doubling from RetryMin up to RetryMax.
	var recoverAt time.Time
	recoverWait := c.cfg.RetryMin
	afterRecover := func(stopped bool) {
		if stopped {
			recoverAt = time.Now().Add(recoverWait)
			recoverWait = min(2*recoverWait, c.cfg.RetryMax)
		} else {
			recoverWait = c.cfg.RetryMin
		}
	}
	if replayFrom < stored {
		stopped, err := c.recoverRange(ctx, p, replayFrom, stored)
		if err != nil {
			return false, err
		}
		afterRecover(stopped)
	}

	r := c.newReader(p)
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return false, fmt.Errorf("partition %d: seek to %d: %w", p, start, err)
	}
	pos := start
	for {
		// Leave overflow once there is room: re-read what was not tracked.
		// Checked before every fetch (but not before recoverAt), so an idle
		// partition recovers too.
		if from, ok := c.tr.overflowFrom(p); ok && c.tr.room() >= c.cfg.OpenMax/2 && !time.Now().Before(recoverAt) {
			stopped, err := c.recoverRange(ctx, p, from, pos)
			if err != nil {
				return progressed, err
			}
			afterRecover(stopped)
		}
		wait := idleWait
		if _, ok := c.tr.overflowFrom(p); ok {
			wait = c.cfg.PublishInterval // room frees up as the publisher settles
		}
		b, err := c.fetchBatch(ctx, r, p, pos, wait)
		if err != nil {
			return progressed, err
		}
		if b == nil {
			continue // idle
		}
		if reset {
			b.Reset, b.ResetFrom = true, stored
		}
		res, maxBucket, err := c.commitBatch(ctx, b)
		if err != nil {
			return progressed, err
		}
		progressed, reset = true, false
		pos = b.End()
		c.afterCommit(b, res, maxBucket)
	}
}

// resetConfirm is how long a stored offset must stay beyond the end of the
// log before the fetcher takes the log for a new one.
const resetConfirm = 2 * time.Second

// storedOffset reads partition p's next offset from the database (0 when
// it has none), retrying with backoff while the database is unreachable.
func (c *Consumer) storedOffset(ctx context.Context, p int32) (int64, error) {
	wait := c.cfg.RetryMin
	for {
		offs, err := c.db.CommittedOffsets(ctx, c.cfg.Topic)
		if err == nil {
			return offs[p], nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		c.logLimited("db-offsets", "read stored offsets failed; retrying", zap.Error(err))
		if !sleep(ctx, wait) {
			return 0, ctx.Err()
		}
		wait = min(2*wait, c.cfg.RetryMax)
	}
}

func (c *Consumer) newReader(p int32) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:         c.cfg.Brokers,
		Topic:           c.cfg.Topic,
		Partition:       int(p),
		Dialer:          c.dialer,
		MinBytes:        1,
		MaxBytes:        16 << 20,
		MaxWait:         500 * time.Millisecond,
		QueueCapacity:   max(c.cfg.BatchMax, 100),
		ReadBackoffMin:  c.cfg.RetryMin,
		ReadBackoffMax:  c.cfg.RetryMax,
		MaxAttempts:     3,
		ErrorLogger:     kafka.LoggerFunc(c.kafkaLog(fmt.Sprint("reader-", p))),
		ReadLagInterval: -1,
	})
}

// idleWait is how long a fetcher waits for a first record before it
// returns to its loop (to check for overflow recovery) with no batch.
const idleWait = time.Second

// fetchBatch reads the next batch from r, whose position is pos: it waits
// up to idle for the first record (returning nil, nil if none came),
// then takes what arrives within BatchWait, up to BatchMax records. Records
// below the position (a client redelivering what it already returned) are
// dropped and counted.
func (c *Consumer) fetchBatch(ctx context.Context, r *kafka.Reader, p int32, pos int64, idle time.Duration) (*batch, error) {
	b := &batch{Partition: p, From: pos, Records: make([]record, 0, 64)}
	next := pos
	take := func(m kafka.Message) {
		if m.Offset < next {
			c.m.redelivered.Inc()
			return
		}
		if m.Offset > next {
			c.m.gaps.Add(float64(m.Offset - next))
			c.logLimited(fmt.Sprint("gap-", p), "the log skipped offsets", zap.Int32("partition", p),
				zap.Int64("expected", next), zap.Int64("got", m.Offset))
		}
		b.Records = append(b.Records, decodeRecord(m.Offset, m.Value))
		b.HighWater = m.HighWaterMark
		next = m.Offset + 1
	}
	ictx, icancel := context.WithTimeout(ctx, idle)
	defer icancel()
	for len(b.Records) == 0 {
		m, err := r.FetchMessage(ictx)
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return nil, nil
			}
			return nil, fmt.Errorf("partition %d: fetch at %d: %w", p, pos, err)
		}
		take(m)
	}
	wctx, cancel := context.WithTimeout(ctx, c.cfg.BatchWait)
	defer cancel()
	defer func() { c.m.lag.WithLabelValues(partitionLabel(p)).Set(float64(max(b.HighWater-pos, 0))) }()
	for len(b.Records) < c.cfg.BatchMax {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				break // the batch is complete
			}
			return nil, fmt.Errorf("partition %d: fetch at %d: %w", p, next, err)
		}
		take(m)
	}
	return b, nil
}

// commitBatch applies b in one transaction, retrying with capped
// exponential backoff until it commits, ctx is done, or the database says
// the fetcher must restart ([errRewound]). A retry after an ambiguous
// failure (the commit may have happened) is harmless: the offset guard drops
// what was applied.
func (c *Consumer) commitBatch(ctx context.Context, b *batch) (applied, int64, error) {
	wait := c.cfg.RetryMin
	for {
		if ctx.Err() != nil {
			return applied{}, 0, ctx.Err()
		}
		now := c.now()
		maxBucket := capBucket(c.cfg.Counts, now)
		var res applied
		t0 := time.Now()
		tctx, cancel := graceContext(ctx, txGrace)
		err := c.db.Update(tctx, func(ctx context.Context, tx store.Tx) error {
			var err error
			res, err = applyBatch(ctx, tx, c.cfg.Topic, b, now, maxBucket)
			return err
		})
		cancel()
		if err == nil {
			c.m.txSeconds.Observe(time.Since(t0).Seconds())
			return res, maxBucket, nil
		}
		if ctx.Err() != nil {
			return res, 0, ctx.Err()
		}
		if errors.Is(err, errRewound) {
			return res, 0, err
		}
		c.m.txErrors.Inc()
		// The lag keeps growing while the database is down; show it.
		if _, high, err := c.bounds(ctx, b.Partition); err == nil {
			c.m.lag.WithLabelValues(partitionLabel(b.Partition)).Set(float64(max(high-b.From, 0)))
		}
		c.logLimited("tx", "batch transaction failed; retrying", zap.Int32("partition", b.Partition),
			zap.Int64("from", b.From), zap.Int("records", len(b.Records)), zap.Duration("backoff", wait), zap.Error(err))
		if !sleep(ctx, wait) {
			return res, 0, ctx.Err()
		}
		wait = min(2*wait, c.cfg.RetryMax)
	}
}

// txGrace is how long a transaction in flight may still run after its
// fetcher's context ends (a rebalance, or shutdown). A batch transaction
// takes milliseconds, so it normally finishes and is accounted for (metrics,
// open posts) instead of being cut off with an ambiguous outcome; with the
// database unreachable, the attempt is abandoned after txGrace.
const txGrace = 2 * time.Second

// graceContext returns a context that ends grace after ctx does, or when
// cancel is called.
func graceContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return tctx, func() { stop(); cancel() }
}

// afterCommit does what follows a committed batch: metrics, skipped-record
// logs, tracking the touched posts and waking the publisher. It never
// blocks.
func (c *Consumer) afterCommit(b *batch, res applied, maxBucket int64) {
	c.m.batches.Inc()
	c.m.events.Add(float64(res.Events))
	c.m.redelivered.Add(float64(res.Redelivered))
	c.m.batchSize.Observe(float64(len(b.Records)))
	c.m.lag.WithLabelValues(partitionLabel(b.Partition)).Set(float64(max(b.HighWater-b.End(), 0)))
	for reason, n := range res.Skipped {
		c.m.skipped.WithLabelValues(reason).Add(float64(n))
	}
	if len(res.Skipped) > 0 {
		for _, r := range b.Records[len(b.Records)-res.Fresh:] {
			if r.Skip != "" {
				c.logLimited("skip", "skipped a record that is not a like event", zap.Int32("partition", b.Partition),
					zap.Int64("offset", r.Offset), zap.String("reason", r.Skip), zap.Error(r.Err))
				break
			}
		}
	}

	// Track every valid event of the batch, also those the offset guard
	// dropped: whoever applied them may have died before publishing.
	evs, _ := validEvents(b.Records)
	if len(evs) == 0 {
		c.tr.add(b.Partition, b.From, b.End(), nil)
		return
	}
	c.addUnfiltered(evs)
	if !c.tr.add(b.Partition, b.From, b.End(), marks(evs, markCap(c.cfg.Counts, maxBucket))) {
		if from, ok := c.tr.overflowFrom(b.Partition); ok {
			c.logLimited("overflow", "open posts at consume.open_max: tracking paused; will re-read the log from the first untracked offset",
				zap.Int32("partition", b.Partition), zap.Int64("from", from))
		}
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// addUnfiltered adds the pairs of the likes marked unfiltered to the shared
// duplicate filter (Deps.Filter). Their sidecar could not record them there
// (cut off from Redis while the other sidecars were not), and until the
// pairs are in it the other sidecars' filters answer "never liked" for
// them: a second like accepted, an unlike refused. The sidecar writes them
// itself once it reaches Redis again; this closes the window within the
// consumer's lag when the consumer reaches Redis sooner. Redelivered events
// count too (whoever applied them may have died before adding them): adding
// a pair twice changes nothing.
func (c *Consumer) addUnfiltered(evs []event.Event) {
	if c.filter == nil {
		return
	}
	for _, e := range evs {
		if e.Unfiltered && e.Op == event.Like {
			c.filter.Add(e.PostID, e.UserID)
			c.m.filterAdds.Inc()
		}
	}
}

// recoverRange re-reads partition p's records in [from, to), which are
// already in the database, and tracks their posts so that the publisher
// settles them in Redis. It is how a new owner finishes the work of one
// that died between committing a batch and settling its posts, and how a
// partition leaves overflow. It never skips part of the range: every record
// in it is re-read or the partition stays in overflow from the first one
// that was not, so its settled offset cannot pass a post that was not
// tracked again.
//
//   - If the tracker has no room for all the posts, it tracks the records up
//     to where room ran out and leaves the partition in overflow from there,
//     to be continued when there is room.
//   - If the read stops early (the log answers with an error, or with
//     nothing for c.recoverQuiet), it tracks what was read, leaves the
//     partition in overflow from the first record not read, and reports
//     stopped: the caller tries again later.
//   - Records the log no longer has (below its first offset: retention)
//     cannot be re-read; they are skipped with a warning, and their posts
//     settle when next touched or when their bases expire.
func (c *Consumer) recoverRange(ctx context.Context, p int32, from, to int64) (stopped bool, err error) {
	if from >= to {
		c.tr.replayed(p, from, to, nil, true)
		return false, nil
	}
	t0 := time.Now()
	r := c.newReader(p)
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return false, fmt.Errorf("partition %d: seek to %d for recovery: %w", p, from, err)
	}
	room := c.tr.room()
	markMax := markCap(c.cfg.Counts, capBucket(c.cfg.Counts, c.now()))
	idx := make(map[int64]int)
	var pm []postMark
	n := 0
	next := from // every record below next is read (or not in the log)
	end := to    // the tracked part is [from, end)
read:
	for next < to {
		// A record that never comes must not hang the partition: after a
		// quiet spell, keep what was read and continue later.
		rctx, cancel := context.WithTimeout(ctx, c.recoverQuiet)
		m, err := r.FetchMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			end, stopped = next, true
			first, _, berr := c.bounds(ctx, p)
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			if berr == nil && first > next {
				// The log no longer has them: nothing to wait for.
				end, stopped = min(first, to), false
				c.log.Warn("records to re-read are gone from the log; skipping them: their posts settle when next touched or when their bases expire",
					zap.Int32("partition", p), zap.Int64("from", next), zap.Int64("log_first", first), zap.Int64("to", to))
			} else {
				c.logLimited(fmt.Sprint("recover-", p), "recovery read stopped early; will continue from the first record not read",
					zap.Int32("partition", p), zap.Int64("from", from), zap.Int64("next", next), zap.Int64("to", to), zap.Error(err))
			}
			break
		}
		switch {
		case m.Offset >= to:
			break read // the log has no more records in the range
		case m.Offset < next:
			continue // below from, or redelivered
		}
		rec := decodeRecord(m.Offset, m.Value)
		if rec.Skip == "" {
			e := rec.Event
			b := min(e.Bucket, markMax)
			if i, ok := idx[e.PostID]; ok {
				pm[i].Bucket = max(pm[i].Bucket, b)
			} else {
				if len(pm) >= room {
					end = m.Offset // no room for this record's post: stop before it
					break read
				}
				idx[e.PostID] = len(pm)
				pm = append(pm, postMark{Post: e.PostID, Bucket: b})
			}
		}
		n++
		next = m.Offset + 1
	}
	c.m.recovered.Add(float64(n))
	if end == from {
		c.tr.overflow(p, from)
		return stopped, nil
	}
	if !c.tr.replayed(p, from, end, pm, end == to) {
		c.logLimited("overflow", "no room to recover open posts; will retry", zap.Int32("partition", p), zap.Int64("from", from))
		return stopped, nil
	}
	switch {
	case end == to:
		c.log.Info("recovered open posts from the log", zap.Int32("partition", p), zap.Int64("from", from), zap.Int64("to", to),
			zap.Int("records", n), zap.Int("posts", len(pm)), zap.Duration("took", time.Since(t0)))
	case !stopped && len(pm) >= room:
		c.logLimited("overflow", "open posts at consume.open_max: recovered part of the untracked range; will continue",
			zap.Int32("partition", p), zap.Int64("from", from), zap.Int64("reached", end), zap.Int64("to", to))
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return stopped, nil
}
