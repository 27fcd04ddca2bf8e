package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/likes-sidecar/likes/counts"
)

// Errors of this package. They are wrapped with detail; test with errors.Is.
var (
	// ErrBadURL means a database URL has a scheme other than postgres,
	// postgresql or sqlite, or is malformed. The message never quotes the
	// URL (it may hold a password).
	ErrBadURL = errors.New("bad database URL")
	// ErrDuplicateKey means one call listed the same key twice where the
	// keys of a call must be distinct (InsertLikes, DeleteLikes, AddCounts).
	// Nothing was written.
	ErrDuplicateKey = errors.New("duplicate key in one call")
	// ErrMigration means applying a schema migration failed; the failed
	// step left nothing behind (each step runs in its own transaction).
	ErrMigration = errors.New("schema migration failed")
)

// Key identifies a like: a (post, user) pair.
type Key struct{ Post, User int64 }

// Like is a row of the likes table.
type Like struct {
	Post, User int64
	At         time.Time // stored with millisecond precision on SQLite
}

// PostDelta is a change of a post's count.
type PostDelta struct{ Post, Delta int64 }

// Effect is the net effect of consumed events on a post's count within one
// counter bucket.
type Effect struct{ Post, Bucket, Delta int64 }

// CountRow is a row of the like_counts table.
type CountRow struct{ Post, Count, Version int64 }

// DB is an open database of either dialect. It is safe for concurrent use;
// it holds a connection pool. Close it when done.
type DB struct {
	dialect string
	where   string   // names the database in messages, no secrets
	secrets []string // scrubbed from driver errors

	pg *pgxpool.Pool // dialect postgres
	sq *sql.DB       // dialect sqlite

	// sqMaxVars is the number of bound parameters one SQLite statement
	// may use; batches are split into chunks below it.
	sqMaxVars int
}

// Open opens the database named by url with [DefaultConfig] and checks that
// it is reachable. The dialect is chosen by the URL's scheme; see
// [Config.URL]. It does not migrate the schema; call [DB.Migrate].
func Open(ctx context.Context, url string) (*DB, error) {
	cfg := DefaultConfig()
	cfg.URL = url
	return OpenConfig(ctx, cfg)
}

// OpenConfig is [Open] with explicit settings. It validates cfg, opens a
// connection pool and pings the server (bounded by cfg.ConnectTimeout and
// ctx). Errors name the database without its password.
func OpenConfig(ctx context.Context, cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err // unreachable: Validate parsed it
	}
	switch t.dialect {
	case DialectPostgres:
		return openPostgres(ctx, cfg, t)
	default:
		return openSQLite(ctx, cfg, t)
	}
}

// Dialect returns "postgres" or "sqlite". Safe for concurrent use.
func (db *DB) Dialect() string { return db.dialect }

// String names the database without secrets, e.g. "postgres://app@db:5432/likes".
func (db *DB) String() string { return db.dialect + " database " + db.where }

// Ping checks that the database answers. Safe for concurrent use.
func (db *DB) Ping(ctx context.Context) error {
	var err error
	if db.pg != nil {
		err = db.pg.Ping(ctx)
	} else {
		err = db.sq.PingContext(ctx)
	}
	return db.wrap(err, "ping")
}

// Close closes the pool, waiting for connections in use to be returned.
// Call it once, after every other call has returned.
func (db *DB) Close() error {
	if db.pg != nil {
		db.pg.Close()
		return nil
	}
	return db.wrap(db.sq.Close(), "close")
}

// HasLike reports whether the likes table holds (post, user): the
// authoritative dedup check behind the sidecar's "maybe seen" answers. One
// point lookup on the primary key. Safe for concurrent use.
func (db *DB) HasLike(ctx context.Context, post, user int64) (bool, error) {
	var ok bool
	var err error
	if db.pg != nil {
		ok, err = db.pgHasLike(ctx, post, user)
	} else {
		ok, err = db.sqHasLike(ctx, post, user)
	}
	return ok, db.wrapf(err, "look up like of post %d by user %d", post, user)
}

// HasLikes is [DB.HasLike] for many keys in one query; result i reports
// keys[i]. Keys may repeat. Safe for concurrent use.
func (db *DB) HasLikes(ctx context.Context, keys []Key) ([]bool, error) {
	if len(keys) == 0 {
		return []bool{}, nil
	}
	var res []bool
	var err error
	if db.pg != nil {
		res, err = db.pgHasLikes(ctx, keys)
	} else {
		res, err = db.sqHasLikes(ctx, keys)
	}
	return res, db.wrapf(err, "look up %d likes", len(keys))
}

// Bases returns, for each post in order, the exact base for watermark w from
// one consistent snapshot:
//
//	Base{Count: like_counts.count − Σ like_effects.delta WHERE bucket > w, Watermark: w, Version: like_counts.version}
//
// A post without a like_counts row gives Version 0 and Count 0 − Σ of its
// like_effects above w (0 when it has none, as always in practice: the
// consumer writes counts and effects in one transaction). Posts may repeat.
// Safe for concurrent use.
//
// Consistency: on PostgreSQL it is one statement, which reads one snapshot;
// on SQLite it is one statement per chunk of posts, inside one read
// transaction when there is more than one chunk.
func (db *DB) Bases(ctx context.Context, posts []int64, w int64) ([]counts.Base, error) {
	if len(posts) == 0 {
		return []counts.Base{}, nil
	}
	var res []counts.Base
	var err error
	if db.pg != nil {
		res, err = db.pgBases(ctx, posts, w)
	} else {
		res, err = db.sqBases(ctx, posts, w)
	}
	return res, db.wrapf(err, "read bases of %d posts at watermark %d", len(posts), w)
}

// CountRow returns the like_counts row of post; ok is false when there is
// none. Safe for concurrent use.
func (db *DB) CountRow(ctx context.Context, post int64) (row CountRow, ok bool, err error) {
	if db.pg != nil {
		row, ok, err = db.pgCountRow(ctx, post)
	} else {
		row, ok, err = db.sqCountRow(ctx, post)
	}
	return row, ok, db.wrapf(err, "read count row of post %d", post)
}

// AppliedBucket returns the newest counter bucket in which an applied event
// changed the post's count (the largest like_effects bucket of the post), and
// false when there is none (no effects, or all pruned). Re-seeding uses it so
// that a base covers every applied event.
func (db *DB) AppliedBucket(ctx context.Context, post int64) (bucket int64, ok bool, err error) {
	q := `SELECT max(bucket) FROM like_effects WHERE post_id = $1`
	var v *int64
	if db.pg != nil {
		err = db.pg.QueryRow(ctx, q, post).Scan(&v)
	} else {
		err = db.sq.QueryRowContext(ctx, `SELECT max(bucket) FROM like_effects WHERE post_id = ?`, post).Scan(&v)
	}
	if err != nil {
		return 0, false, db.wrapf(err, "read applied bucket of post %d", post)
	}
	if v == nil {
		return 0, false, nil
	}
	return *v, true, nil
}

// CountLikes counts the likes rows of post (a scan of the post's primary key
// range; meant for tests and the benchmark's verdict, not the hot path).
// Safe for concurrent use.
func (db *DB) CountLikes(ctx context.Context, post int64) (int64, error) {
	const q = `SELECT count(*) FROM likes WHERE post_id = $1`
	var n int64
	var err error
	if db.pg != nil {
		err = db.pg.QueryRow(ctx, q, post).Scan(&n)
	} else {
		err = db.sq.QueryRowContext(ctx, q, post).Scan(&n)
	}
	return n, db.wrapf(err, "count likes of post %d", post)
}

// CommittedOffsets returns the next offset to consume per partition of
// topic, as committed by consumer transactions ([Tx.SetOffsets]). Partitions
// without a row are absent from the map. Safe for concurrent use.
func (db *DB) CommittedOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	var res map[int32]int64
	var err error
	if db.pg != nil {
		res, err = db.pgCommittedOffsets(ctx, topic)
	} else {
		res, err = db.sqCommittedOffsets(ctx, topic)
	}
	return res, db.wrapf(err, "read committed offsets of topic %q", topic)
}

// PruneEffects deletes the like_effects rows with bucket < belowBucket and
// returns how many it deleted. Safe for concurrent use.
func (db *DB) PruneEffects(ctx context.Context, belowBucket int64) (int64, error) {
	var n int64
	var err error
	if db.pg != nil {
		n, err = db.pgPruneEffects(ctx, belowBucket)
	} else {
		n, err = db.sqPruneEffects(ctx, belowBucket)
	}
	return n, db.wrapf(err, "prune like effects below bucket %d", belowBucket)
}

// wrap adds the operation and the database to err, removing secrets.
func (db *DB) wrap(err error, op string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s (%s %s): %w", op, db.dialect, db.where, scrub(err, db.secrets))
}

func (db *DB) wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return db.wrap(err, fmt.Sprintf(format, args...))
}
