package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// migrationsFS holds one directory per dialect, one file per step:
// migrations/<dialect>/<NNNN>_<name>.sql, numbered from 0001 without gaps.
// A step, once released, is never edited; a change is a new step.
//
//go:embed migrations
var migrationsFS embed.FS

// migrationLockKey is the PostgreSQL advisory lock that serializes Migrate
// across processes (an arbitrary constant: "likes" in ASCII).
const migrationLockKey = 0x6c696b6573

type migration struct {
	version int
	name    string // file name, e.g. "0001_schema.sql"
	sql     string
}

// loadMigrations reads the steps of dialect from fsys, in order.
func loadMigrations(fsys fs.FS, dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s/%s: name must be NNNN_name.sql", dir, name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read %s/%s: %w", dir, name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations of %s: step %d is %s, want number %04d (no gaps, no repeats)", dialect, i+1, m.name, i+1)
		}
	}
	return ms, nil
}

// Migrate brings the schema up to date: it applies, in order, every embedded
// step not yet recorded in table schema_migrations, all in one transaction,
// so a failed step leaves nothing of this call behind ([ErrMigration]).
// It is idempotent, and safe to run from several processes at once:
// PostgreSQL serializes them on an advisory lock held by the transaction,
// SQLite on its write lock (BEGIN IMMEDIATE). Steps recorded by a newer
// build and unknown to this one are left alone.
func (db *DB) Migrate(ctx context.Context) error {
	return db.migrate(ctx, migrationsFS)
}

// SchemaVersion returns the highest step recorded in schema_migrations, or
// 0 for a database never migrated. Safe for concurrent use.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	const q = `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`
	var v int
	var err error
	if db.pg != nil {
		var exists bool
		err = db.pg.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists)
		if err == nil && exists {
			err = db.pg.QueryRow(ctx, q).Scan(&v)
		}
	} else {
		var n int
		err = db.sq.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n)
		if err == nil && n > 0 {
			err = db.sq.QueryRowContext(ctx, q).Scan(&v)
		}
	}
	return v, db.wrap(err, "read schema version")
}

// LatestSchemaVersion is the number of the last embedded migration step,
// the version [DB.Migrate] brings a database to.
func LatestSchemaVersion() int {
	ms, err := loadMigrations(migrationsFS, DialectPostgres)
	if err != nil {
		return 0
	}
	return len(ms)
}

func (db *DB) migrate(ctx context.Context, fsys fs.FS) error {
	ms, err := loadMigrations(fsys, db.dialect)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMigration, db.String(), err)
	}
	if db.pg != nil {
		err = db.pgMigrate(ctx, ms)
	} else {
		err = db.sqMigrate(ctx, ms)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMigration, db.String(), scrub(err, db.secrets))
	}
	return nil
}

// pending returns the steps of ms whose version is not in applied.
func pending(ms []migration, applied []int) []migration {
	var out []migration
	for _, m := range ms {
		if !slices.Contains(applied, m.version) {
			out = append(out, m)
		}
	}
	return out
}
