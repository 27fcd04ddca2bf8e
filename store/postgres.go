package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/likes-sidecar/likes/counts"
)

// PostgreSQL: every batch is one statement over arrays bound as parameters
// (unnest($1::bigint[], …)), so a batch of any size costs one round trip and
// one plan, and the statement text is constant (pgx caches its prepared
// statement per connection).

func openPostgres(ctx context.Context, cfg Config, t target) (*DB, error) {
	pcfg, err := pgxpool.ParseConfig(t.conn)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadURL, t.where, scrub(err, t.secrets))
	}
	pcfg.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	if cfg.tracer != nil {
		pcfg.ConnConfig.Tracer = cfg.tracer
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = int32(min(cfg.MaxConns, 1<<30))
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres database %s: %w", t.where, scrub(err, t.secrets))
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres database %s: %w", t.where, scrub(err, t.secrets))
	}
	return &DB{dialect: DialectPostgres, where: t.where, secrets: t.secrets, pg: pool}, nil
}

func (db *DB) pgMigrate(ctx context.Context, ms []migration) error {
	tx, err := db.pg.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	// The lock comes first: CREATE TABLE IF NOT EXISTS is not safe against
	// a concurrent creation of the same table.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockKey)); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INT         PRIMARY KEY,
		name       TEXT        NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, _ := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	for _, m := range pending(ms, applied) {
		if _, err := tx.Exec(ctx, m.sql); err != nil { // no arguments: simple protocol, several statements
			return fmt.Errorf("step %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return fmt.Errorf("record step %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (db *DB) pgHasLike(ctx context.Context, post, user int64) (bool, error) {
	var ok bool
	err := db.pg.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM likes WHERE post_id = $1 AND user_id = $2)`, post, user).Scan(&ok)
	return ok, err
}

func (db *DB) pgHasLikes(ctx context.Context, keys []Key) ([]bool, error) {
	posts, users := splitKeys(keys)
	rows, _ := db.pg.Query(ctx, `
		SELECT k.i FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS k(p, u, i)
		WHERE EXISTS (SELECT 1 FROM likes l WHERE l.post_id = k.p AND l.user_id = k.u)`, posts, users)
	res := make([]bool, len(keys))
	var i int64
	_, err := pgx.ForEachRow(rows, []any{&i}, func() error {
		res[i-1] = true
		return nil
	})
	return res, err
}

func (db *DB) pgBases(ctx context.Context, posts []int64, w int64) ([]counts.Base, error) {
	rows, _ := db.pg.Query(ctx, `
		SELECT k.i,
		       COALESCE(c.count, 0) - COALESCE((SELECT sum(e.delta) FROM like_effects e WHERE e.post_id = k.p AND e.bucket > $2), 0)::bigint,
		       COALESCE(c.version, 0)
		FROM unnest($1::bigint[]) WITH ORDINALITY AS k(p, i)
		LEFT JOIN like_counts c ON c.post_id = k.p`, posts, w)
	res := make([]counts.Base, len(posts))
	var i, n, v int64
	_, err := pgx.ForEachRow(rows, []any{&i, &n, &v}, func() error {
		res[i-1] = counts.Base{Count: n, Watermark: w, Version: v}
		return nil
	})
	return res, err
}

func (db *DB) pgCountRow(ctx context.Context, post int64) (CountRow, bool, error) {
	r := CountRow{Post: post}
	err := db.pg.QueryRow(ctx, `SELECT count, version FROM like_counts WHERE post_id = $1`, post).Scan(&r.Count, &r.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return CountRow{}, false, nil
	}
	return r, err == nil, err
}

func (db *DB) pgCommittedOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	rows, _ := db.pg.Query(ctx, `SELECT partition, next_offset FROM consumer_offsets WHERE topic = $1`, topic)
	return collectOffsets(rows)
}

func collectOffsets(rows pgx.Rows) (map[int32]int64, error) {
	res := make(map[int32]int64)
	var p int32
	var o int64
	_, err := pgx.ForEachRow(rows, []any{&p, &o}, func() error {
		res[p] = o
		return nil
	})
	return res, err
}

func (db *DB) pgPruneEffects(ctx context.Context, below int64) (int64, error) {
	tag, err := db.pg.Exec(ctx, `DELETE FROM like_effects WHERE bucket < $1`, below)
	return tag.RowsAffected(), err
}

func (db *DB) pgUpdate(ctx context.Context, fn func(context.Context, Tx) error) (err error) {
	tx, err := db.pg.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return db.wrap(err, "begin transaction")
	}
	committed := false
	defer func() {
		if !committed {
			// Rollback even when ctx is done; pgx closes the
			// connection if the rollback itself fails.
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err := fn(ctx, pgTx{tx: tx}); err != nil {
		return err
	}
	committed = true // a failed Commit has rolled back
	if err := tx.Commit(ctx); err != nil {
		return db.wrap(err, "commit transaction")
	}
	return nil
}

// pgTx implements Tx on PostgreSQL.
type pgTx struct{ tx pgx.Tx }

func (t pgTx) LockOffsets(ctx context.Context, topic string, partitions []int32) (map[int32]int64, error) {
	if len(partitions) == 0 {
		return map[int32]int64{}, nil
	}
	// Two statements, one round trip. The SELECT runs with a new snapshot
	// (READ COMMITTED) so it sees rows another transaction created and
	// committed while the INSERT waited for it.
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO consumer_offsets (topic, partition, next_offset, updated_at)
		SELECT $1, p, 0, now() FROM unnest($2::int[]) AS u(p) ORDER BY p
		ON CONFLICT (topic, partition) DO NOTHING`, topic, partitions)
	b.Queue(`SELECT partition, next_offset FROM consumer_offsets
		WHERE topic = $1 AND partition = ANY($2::int[])
		ORDER BY partition FOR UPDATE`, topic, partitions)
	br := t.tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("create offset rows of topic %q: %w", topic, err)
	}
	rows, err := br.Query()
	if err == nil {
		var res map[int32]int64
		if res, err = collectOffsets(rows); err == nil {
			err = br.Close()
		}
		if err == nil {
			return res, nil
		}
	}
	return nil, fmt.Errorf("lock offsets of topic %q: %w", topic, err)
}

func (t pgTx) SetOffsets(ctx context.Context, topic string, next map[int32]int64) error {
	if len(next) == 0 {
		return nil
	}
	parts := make([]int32, 0, len(next))
	offs := make([]int64, 0, len(next))
	for p, o := range next {
		parts = append(parts, p)
		offs = append(offs, o)
	}
	_, err := t.tx.Exec(ctx, `
		INSERT INTO consumer_offsets AS c (topic, partition, next_offset, updated_at)
		SELECT $1, p, o, now() FROM unnest($2::int[], $3::bigint[]) AS u(p, o) ORDER BY p
		ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = EXCLUDED.updated_at`,
		topic, parts, offs)
	if err != nil {
		return fmt.Errorf("set %d offsets of topic %q: %w", len(next), topic, err)
	}
	return nil
}

func (t pgTx) InsertLikes(ctx context.Context, rows []Like) ([]bool, error) {
	if len(rows) == 0 {
		return []bool{}, nil
	}
	idx, err := keyIndex(len(rows), func(i int) Key { return Key{rows[i].Post, rows[i].User} })
	if err != nil {
		return nil, fmt.Errorf("insert %d likes: %w", len(rows), err)
	}
	posts := make([]int64, len(rows))
	users := make([]int64, len(rows))
	ats := make([]time.Time, len(rows))
	for i, r := range rows {
		posts[i], users[i], ats[i] = r.Post, r.User, r.At
	}
	res := make([]bool, len(rows))
	q, _ := t.tx.Query(ctx, `
		INSERT INTO likes (post_id, user_id, liked_at)
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[])
		ON CONFLICT DO NOTHING
		RETURNING post_id, user_id`, posts, users, ats)
	var k Key
	if _, err := pgx.ForEachRow(q, []any{&k.Post, &k.User}, func() error {
		res[idx[k]] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("insert %d likes: %w", len(rows), err)
	}
	return res, nil
}

func (t pgTx) DeleteLikes(ctx context.Context, keys []Key) ([]bool, error) {
	if len(keys) == 0 {
		return []bool{}, nil
	}
	idx, err := keyIndex(len(keys), func(i int) Key { return keys[i] })
	if err != nil {
		return nil, fmt.Errorf("delete %d likes: %w", len(keys), err)
	}
	posts, users := splitKeys(keys)
	res := make([]bool, len(keys))
	q, _ := t.tx.Query(ctx, `
		DELETE FROM likes l USING unnest($1::bigint[], $2::bigint[]) AS k(p, u)
		WHERE l.post_id = k.p AND l.user_id = k.u
		RETURNING l.post_id, l.user_id`, posts, users)
	var k Key
	if _, err := pgx.ForEachRow(q, []any{&k.Post, &k.User}, func() error {
		res[idx[k]] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("delete %d likes: %w", len(keys), err)
	}
	return res, nil
}

func (t pgTx) AddCounts(ctx context.Context, deltas []PostDelta) ([]CountRow, error) {
	if len(deltas) == 0 {
		return []CountRow{}, nil
	}
	idx, err := keyIndex(len(deltas), func(i int) int64 { return deltas[i].Post })
	if err != nil {
		return nil, fmt.Errorf("add counts of %d posts: %w", len(deltas), err)
	}
	posts := make([]int64, len(deltas))
	ds := make([]int64, len(deltas))
	for i, d := range deltas {
		posts[i], ds[i] = d.Post, d.Delta
	}
	res := make([]CountRow, len(deltas))
	// ORDER BY: rows are locked in post order, so two transactions
	// touching the same posts cannot deadlock.
	q, _ := t.tx.Query(ctx, `
		INSERT INTO like_counts AS c (post_id, count, version, updated_at)
		SELECT p, d, 1, now() FROM unnest($1::bigint[], $2::bigint[]) AS u(p, d) ORDER BY p
		ON CONFLICT (post_id) DO UPDATE
		SET count = c.count + EXCLUDED.count, version = c.version + 1, updated_at = EXCLUDED.updated_at
		RETURNING post_id, count, version`, posts, ds)
	var r CountRow
	if _, err := pgx.ForEachRow(q, []any{&r.Post, &r.Count, &r.Version}, func() error {
		res[idx[r.Post]] = r
		return nil
	}); err != nil {
		return nil, fmt.Errorf("add counts of %d posts: %w", len(deltas), err)
	}
	return res, nil
}

func (t pgTx) AddEffects(ctx context.Context, effects []Effect) error {
	m := mergeEffects(effects)
	if len(m) == 0 {
		return nil
	}
	posts := make([]int64, len(m))
	buckets := make([]int64, len(m))
	ds := make([]int64, len(m))
	for i, e := range m {
		posts[i], buckets[i], ds[i] = e.Post, e.Bucket, e.Delta
	}
	_, err := t.tx.Exec(ctx, `
		INSERT INTO like_effects AS e (post_id, bucket, delta)
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])
		ON CONFLICT (post_id, bucket) DO UPDATE SET delta = e.delta + EXCLUDED.delta`, posts, buckets, ds)
	if err != nil {
		return fmt.Errorf("add %d like effects: %w", len(m), err)
	}
	return nil
}

func (t pgTx) EffectsAbove(ctx context.Context, posts []int64, w int64) ([]int64, error) {
	if len(posts) == 0 {
		return []int64{}, nil
	}
	q, _ := t.tx.Query(ctx, `
		SELECT k.i, COALESCE((SELECT sum(e.delta) FROM like_effects e WHERE e.post_id = k.p AND e.bucket > $2), 0)::bigint
		FROM unnest($1::bigint[]) WITH ORDINALITY AS k(p, i)`, posts, w)
	res := make([]int64, len(posts))
	var i, s int64
	if _, err := pgx.ForEachRow(q, []any{&i, &s}, func() error {
		res[i-1] = s
		return nil
	}); err != nil {
		return nil, fmt.Errorf("sum effects above bucket %d of %d posts: %w", w, len(posts), err)
	}
	return res, nil
}

func splitKeys(keys []Key) (posts, users []int64) {
	posts = make([]int64, len(keys))
	users = make([]int64, len(keys))
	for i, k := range keys {
		posts[i], users[i] = k.Post, k.User
	}
	return posts, users
}
