package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/likes-sidecar/likes/counts"
)

// SQLite: the same statements as PostgreSQL with multi-row VALUES lists in
// place of arrays, split into chunks so that no statement binds more than
// sqliteMaxVars parameters. Writes need no row locks: BEGIN IMMEDIATE takes
// the database's single write lock for the whole transaction. Times are
// INTEGER Unix milliseconds.

// sqliteMaxVars is SQLITE_MAX_VARIABLE_NUMBER of the SQLite built into
// modernc.org/sqlite (the default since SQLite 3.32).
const sqliteMaxVars = 32766

// sqliteDefaultConns is the pool size when Config.MaxConns is 0. WAL lets
// readers run beside the one writer.
const sqliteDefaultConns = 4

func openSQLite(ctx context.Context, cfg Config, t target) (*DB, error) {
	memory := t.conn == ":memory:"
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(cfg.BusyTimeout.Milliseconds()))
	if !memory {
		q.Set("_journal_mode", "WAL")
	}
	q.Set("_synchronous", "FULL") // a committed batch survives power loss, not only a crash
	q.Set("_foreign_keys", "1")
	q.Set("_txlock", "immediate") // every BeginTx but read-only ones
	q.Set("_defensive", "1")      // no writable_schema and other ways to corrupt the file from SQL
	q.Set("_dqs", "0")            // "x" is an identifier, never a string literal
	sq, err := sql.Open("sqlite", t.conn+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", t.where, err)
	}
	n := cfg.MaxConns
	if n == 0 {
		n = sqliteDefaultConns
	}
	if memory {
		n = 1 // every connection to ":memory:" is a database of its own
	}
	sq.SetMaxOpenConns(n)
	sq.SetMaxIdleConns(n)
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if err := sq.PingContext(pctx); err != nil {
		sq.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", t.where, err)
	}
	return &DB{dialect: DialectSQLite, where: t.where, sq: sq, sqMaxVars: sqliteMaxVars}, nil
}

func (db *DB) sqMigrate(ctx context.Context, ms []migration) error {
	tx, err := db.sq.BeginTx(ctx, nil) // BEGIN IMMEDIATE: serializes concurrent Migrate calls
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	var applied []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		applied = append(applied, v)
	}
	if err := closeRows(rows); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	for _, m := range pending(ms, applied) {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("step %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("record step %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// chunkRows is how many rows of perRow parameters (plus fixed ones per
// statement) fit in one statement.
func chunkRows(maxVars, perRow, fixed int) int {
	return max(1, (maxVars-fixed)/perRow)
}

// placeholders returns n copies of row ("(?,?)") separated by commas.
func placeholders(row string, n int) string {
	var b strings.Builder
	b.Grow(n * (len(row) + 1))
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

// queryEach runs q with args and calls scan for every row.
func queryEach(ctx context.Context, db querier, q string, args []any, dest []any, each func()) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return err
		}
		each()
	}
	return closeRows(rows)
}

// sqRead runs fn on the pool when the work is one statement, or inside one
// read-only (deferred) transaction when it is several, so that all chunks
// read the same snapshot.
func (db *DB) sqRead(ctx context.Context, statements int, fn func(q querier) error) error {
	if statements <= 1 {
		return fn(db.sq)
	}
	tx, err := db.sq.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	return fn(tx)
}

func (db *DB) sqHasLike(ctx context.Context, post, user int64) (bool, error) {
	var one int
	err := db.sq.QueryRowContext(ctx, `SELECT 1 FROM likes WHERE post_id = ? AND user_id = ?`, post, user).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (db *DB) sqHasLikes(ctx context.Context, keys []Key) ([]bool, error) {
	per := chunkRows(db.sqMaxVars, 2, 0)
	found := make(map[Key]bool)
	err := db.sqRead(ctx, (len(keys)+per-1)/per, func(q querier) error {
		for lo := 0; lo < len(keys); lo += per {
			part := keys[lo:min(lo+per, len(keys))]
			args := make([]any, 0, 2*len(part))
			for _, k := range part {
				args = append(args, k.Post, k.User)
			}
			var k Key
			if err := queryEach(ctx, q,
				`SELECT post_id, user_id FROM likes WHERE (post_id, user_id) IN (VALUES `+placeholders("(?,?)", len(part))+`)`,
				args, []any{&k.Post, &k.User}, func() { found[k] = true }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := make([]bool, len(keys))
	for i, k := range keys {
		res[i] = found[k]
	}
	return res, nil
}

func (db *DB) sqBases(ctx context.Context, posts []int64, w int64) ([]counts.Base, error) {
	per := chunkRows(db.sqMaxVars, 1, 1)
	got := make(map[int64]counts.Base, len(posts))
	err := db.sqRead(ctx, (len(posts)+per-1)/per, func(q querier) error {
		for lo := 0; lo < len(posts); lo += per {
			part := posts[lo:min(lo+per, len(posts))]
			args := make([]any, 0, len(part)+1)
			args = append(args, w) // the first '?' in the text
			for _, p := range part {
				args = append(args, p)
			}
			var p, n, v int64
			if err := queryEach(ctx, q, `
				WITH w(v) AS (SELECT ?), k(p) AS (VALUES `+placeholders("(?)", len(part))+`)
				SELECT k.p,
				       COALESCE(c.count, 0) - COALESCE((SELECT SUM(e.delta) FROM like_effects e WHERE e.post_id = k.p AND e.bucket > (SELECT v FROM w)), 0),
				       COALESCE(c.version, 0)
				FROM k LEFT JOIN like_counts c ON c.post_id = k.p`,
				args, []any{&p, &n, &v}, func() { got[p] = counts.Base{Count: n, Watermark: w, Version: v} }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := make([]counts.Base, len(posts))
	for i, p := range posts {
		res[i] = got[p]
	}
	return res, nil
}

func (db *DB) sqCountRow(ctx context.Context, post int64) (CountRow, bool, error) {
	r := CountRow{Post: post}
	err := db.sq.QueryRowContext(ctx, `SELECT count, version FROM like_counts WHERE post_id = ?`, post).Scan(&r.Count, &r.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return CountRow{}, false, nil
	}
	return r, err == nil, err
}

func (db *DB) sqCommittedOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	res := make(map[int32]int64)
	var p int32
	var o int64
	err := queryEach(ctx, db.sq, `SELECT "partition", next_offset FROM consumer_offsets WHERE topic = ?`,
		[]any{topic}, []any{&p, &o}, func() { res[p] = o })
	return res, err
}

func (db *DB) sqPruneEffects(ctx context.Context, below int64) (int64, error) {
	r, err := db.sq.ExecContext(ctx, `DELETE FROM like_effects WHERE bucket < ?`, below)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

func (db *DB) sqUpdate(ctx context.Context, fn func(context.Context, Tx) error) error {
	tx, err := db.sq.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see openSQLite)
	if err != nil {
		return db.wrap(err, "begin transaction")
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
	}()
	if err := fn(ctx, sqTx{tx: tx, maxVars: db.sqMaxVars}); err != nil {
		return err
	}
	committed = true // a failed Commit has rolled back
	if err := tx.Commit(); err != nil {
		return db.wrap(err, "commit transaction")
	}
	return nil
}

// sqTx implements Tx on SQLite.
type sqTx struct {
	tx      *sql.Tx
	maxVars int
}

func (t sqTx) LockOffsets(ctx context.Context, topic string, partitions []int32) (map[int32]int64, error) {
	res := make(map[int32]int64, len(partitions))
	if len(partitions) == 0 {
		return res, nil
	}
	now := time.Now().UnixMilli()
	per := chunkRows(t.maxVars, 3, 0)
	for lo := 0; lo < len(partitions); lo += per {
		part := partitions[lo:min(lo+per, len(partitions))]
		args := make([]any, 0, 3*len(part))
		for _, p := range part {
			args = append(args, topic, p, now)
		}
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO consumer_offsets (topic, "partition", next_offset, updated_at) VALUES `+
			placeholders("(?,?,0,?)", len(part))+` ON CONFLICT DO NOTHING`, args...); err != nil {
			return nil, fmt.Errorf("create offset rows of topic %q: %w", topic, err)
		}
	}
	per = chunkRows(t.maxVars, 1, 1)
	for lo := 0; lo < len(partitions); lo += per {
		part := partitions[lo:min(lo+per, len(partitions))]
		args := make([]any, 0, len(part)+1)
		args = append(args, topic)
		for _, p := range part {
			args = append(args, p)
		}
		var p int32
		var o int64
		if err := queryEach(ctx, t.tx, `SELECT "partition", next_offset FROM consumer_offsets WHERE topic = ? AND "partition" IN (`+
			placeholders("?", len(part))+`)`, args, []any{&p, &o}, func() { res[p] = o }); err != nil {
			return nil, fmt.Errorf("lock offsets of topic %q: %w", topic, err)
		}
	}
	return res, nil
}

func (t sqTx) SetOffsets(ctx context.Context, topic string, next map[int32]int64) error {
	if len(next) == 0 {
		return nil
	}
	now := time.Now().UnixMilli()
	args := make([]any, 0, 4*len(next))
	for p, o := range next {
		args = append(args, topic, p, o, now)
	}
	per := chunkRows(t.maxVars, 4, 0)
	for lo := 0; lo < len(args); lo += 4 * per {
		part := args[lo:min(lo+4*per, len(args))]
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO consumer_offsets (topic, "partition", next_offset, updated_at) VALUES `+
			placeholders("(?,?,?,?)", len(part)/4)+
			` ON CONFLICT (topic, "partition") DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at`,
			part...); err != nil {
			return fmt.Errorf("set %d offsets of topic %q: %w", len(next), topic, err)
		}
	}
	return nil
}

func (t sqTx) InsertLikes(ctx context.Context, rows []Like) ([]bool, error) {
	if len(rows) == 0 {
		return []bool{}, nil
	}
	idx, err := keyIndex(len(rows), func(i int) Key { return Key{rows[i].Post, rows[i].User} })
	if err != nil {
		return nil, fmt.Errorf("insert %d likes: %w", len(rows), err)
	}
	res := make([]bool, len(rows))
	per := chunkRows(t.maxVars, 3, 0)
	for lo := 0; lo < len(rows); lo += per {
		part := rows[lo:min(lo+per, len(rows))]
		args := make([]any, 0, 3*len(part))
		for _, r := range part {
			args = append(args, r.Post, r.User, r.At.UnixMilli())
		}
		var k Key
		if err := queryEach(ctx, t.tx, `INSERT INTO likes (post_id, user_id, liked_at) VALUES `+placeholders("(?,?,?)", len(part))+
			` ON CONFLICT DO NOTHING RETURNING post_id, user_id`,
			args, []any{&k.Post, &k.User}, func() { res[idx[k]] = true }); err != nil {
			return nil, fmt.Errorf("insert %d likes: %w", len(rows), err)
		}
	}
	return res, nil
}

func (t sqTx) DeleteLikes(ctx context.Context, keys []Key) ([]bool, error) {
	if len(keys) == 0 {
		return []bool{}, nil
	}
	idx, err := keyIndex(len(keys), func(i int) Key { return keys[i] })
	if err != nil {
		return nil, fmt.Errorf("delete %d likes: %w", len(keys), err)
	}
	res := make([]bool, len(keys))
	per := chunkRows(t.maxVars, 2, 0)
	for lo := 0; lo < len(keys); lo += per {
		part := keys[lo:min(lo+per, len(keys))]
		args := make([]any, 0, 2*len(part))
		for _, k := range part {
			args = append(args, k.Post, k.User)
		}
		var k Key
		if err := queryEach(ctx, t.tx, `DELETE FROM likes WHERE (post_id, user_id) IN (VALUES `+placeholders("(?,?)", len(part))+
			`) RETURNING post_id, user_id`,
			args, []any{&k.Post, &k.User}, func() { res[idx[k]] = true }); err != nil {
			return nil, fmt.Errorf("delete %d likes: %w", len(keys), err)
		}
	}
	return res, nil
}

func (t sqTx) AddCounts(ctx context.Context, deltas []PostDelta) ([]CountRow, error) {
	if len(deltas) == 0 {
		return []CountRow{}, nil
	}
	idx, err := keyIndex(len(deltas), func(i int) int64 { return deltas[i].Post })
	if err != nil {
		return nil, fmt.Errorf("add counts of %d posts: %w", len(deltas), err)
	}
	now := time.Now().UnixMilli()
	res := make([]CountRow, len(deltas))
	per := chunkRows(t.maxVars, 3, 0)
	for lo := 0; lo < len(deltas); lo += per {
		part := deltas[lo:min(lo+per, len(deltas))]
		args := make([]any, 0, 3*len(part))
		for _, d := range part {
			args = append(args, d.Post, d.Delta, now)
		}
		var r CountRow
		if err := queryEach(ctx, t.tx, `INSERT INTO like_counts (post_id, count, version, updated_at) VALUES `+
			placeholders("(?,?,1,?)", len(part))+
			` ON CONFLICT (post_id) DO UPDATE SET count = count + excluded.count, version = version + 1, updated_at = excluded.updated_at`+
			` RETURNING post_id, count, version`,
			args, []any{&r.Post, &r.Count, &r.Version}, func() { res[idx[r.Post]] = r }); err != nil {
			return nil, fmt.Errorf("add counts of %d posts: %w", len(deltas), err)
		}
	}
	return res, nil
}

func (t sqTx) AddEffects(ctx context.Context, effects []Effect) error {
	m := mergeEffects(effects)
	per := chunkRows(t.maxVars, 3, 0)
	for lo := 0; lo < len(m); lo += per {
		part := m[lo:min(lo+per, len(m))]
		args := make([]any, 0, 3*len(part))
		for _, e := range part {
			args = append(args, e.Post, e.Bucket, e.Delta)
		}
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO like_effects (post_id, bucket, delta) VALUES `+
			placeholders("(?,?,?)", len(part))+
			` ON CONFLICT (post_id, bucket) DO UPDATE SET delta = delta + excluded.delta`, args...); err != nil {
			return fmt.Errorf("add %d like effects: %w", len(m), err)
		}
	}
	return nil
}

func (t sqTx) EffectsAbove(ctx context.Context, posts []int64, w int64) ([]int64, error) {
	if len(posts) == 0 {
		return []int64{}, nil
	}
	got := make(map[int64]int64, len(posts))
	per := chunkRows(t.maxVars, 1, 1)
	for lo := 0; lo < len(posts); lo += per {
		part := posts[lo:min(lo+per, len(posts))]
		args := make([]any, 0, len(part)+1)
		args = append(args, w)
		for _, p := range part {
			args = append(args, p)
		}
		var p, s int64
		if err := queryEach(ctx, t.tx, `
			WITH w(v) AS (SELECT ?), k(p) AS (VALUES `+placeholders("(?)", len(part))+`)
			SELECT k.p, COALESCE((SELECT SUM(e.delta) FROM like_effects e WHERE e.post_id = k.p AND e.bucket > (SELECT v FROM w)), 0)
			FROM k`, args, []any{&p, &s}, func() { got[p] = s }); err != nil {
			return nil, fmt.Errorf("sum effects above bucket %d of %d posts: %w", w, len(posts), err)
		}
	}
	res := make([]int64, len(posts))
	for i, p := range posts {
		res[i] = got[p]
	}
	return res, nil
}
