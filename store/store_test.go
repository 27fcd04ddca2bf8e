package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/likes-sidecar/likes/counts"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// A variant is one way to run the contract: a dialect, and for SQLite also
// a tiny bound-parameter limit so that every batch is split into chunks of
// one or two rows and the chunking paths run.
type variant struct {
	name    string
	newURL  func(t *testing.T) string
	maxVars int // SQLite only; 0 keeps the default
}

var variants = []variant{
	{name: "postgres", newURL: func(t *testing.T) string { return testenv.Postgres(t) }},
	{name: "sqlite", newURL: sqliteURL},
	{name: "sqlite with tiny statement chunks", newURL: sqliteURL, maxVars: 7},
}

func sqliteURL(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "likes.db")
}

// fixture is a fresh, migrated database of one variant.
type fixture struct {
	v   variant
	url string
	db  *DB
}

// open opens another handle on the fixture's database (not migrated).
func (f *fixture) open(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), f.url)
	if err != nil {
		t.Fatalf("open %s: %v", f.v.name, err)
	}
	if f.v.maxVars > 0 {
		db.sqMaxVars = f.v.maxVars
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newFixture(t *testing.T, v variant, migrate bool) *fixture {
	t.Helper()
	f := &fixture{v: v, url: v.newURL(t)}
	f.db = f.open(t)
	if migrate {
		if err := f.db.Migrate(context.Background()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	return f
}

// contract is the behaviour both dialects must share. Each case gets a
// fresh database.
var contract = []struct {
	name      string
	unmigrate bool // the case migrates itself
	run       func(t *testing.T, f *fixture)
}{
	{"migrating twice changes nothing", false, testMigrateTwice},
	{"two processes migrating at once both succeed", true, testMigrateConcurrently},
	{"a failed migration step leaves nothing behind", true, testMigrateFailure},
	{"every call on a database without the schema fails with an error", true, testNoSchema},
	{"inserting likes reports which rows were new", false, testInsertDuplicates},
	{"a call listing a key twice is refused and writes nothing", false, testDuplicateKeys},
	{"deleting likes reports which keys existed", false, testDeleteMissing},
	{"lookups see exactly the stored likes", false, testLookups},
	{"counts add deltas and every listed post gets a new version", false, testCounts},
	{"effects accumulate per bucket and zero deltas are skipped", false, testEffects},
	{"bases subtract the effects above the watermark", false, testBases},
	{"offsets are created at zero, locked and set", false, testOffsets},
	{"an update that fails or panics writes nothing", false, testRollback},
	{"concurrent updates of one partition serialize", false, testSerialize},
	{"a batch of 5,000 rows is applied whole", false, testLargeBatch},
}

func TestContract(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for _, c := range contract {
				t.Run(c.name, func(t *testing.T) {
					c.run(t, newFixture(t, v, !c.unmigrate))
				})
			}
		})
	}
}

func update(t *testing.T, db *DB, fn func(ctx context.Context, tx Tx) error) {
	t.Helper()
	if err := db.Update(context.Background(), fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

var at = time.UnixMilli(1764230400123).UTC()

func likes(keys ...Key) []Like {
	rows := make([]Like, len(keys))
	for i, k := range keys {
		rows[i] = Like{Post: k.Post, User: k.User, At: at}
	}
	return rows
}

func countLikes(t *testing.T, db *DB, post int64) int64 {
	t.Helper()
	n, err := db.CountLikes(context.Background(), post)
	noErr(t, "count likes", err)
	return n
}

func testMigrateTwice(t *testing.T, f *fixture) {
	ctx := context.Background()
	update(t, f.db, func(ctx context.Context, tx Tx) error {
		_, err := tx.InsertLikes(ctx, likes(Key{1, 1}))
		return err
	})
	noErr(t, "second migrate", f.db.Migrate(ctx))
	noErr(t, "migrate from another handle", f.open(t).Migrate(ctx))
	v, err := f.db.SchemaVersion(ctx)
	noErr(t, "schema version", err)
	equal(t, "schema version", v, LatestSchemaVersion())
	equal(t, "likes after migrating again", countLikes(t, f.db, 1), int64(1))
}

func testMigrateConcurrently(t *testing.T, f *fixture) {
	ctx := context.Background()
	v, err := f.db.SchemaVersion(ctx)
	noErr(t, "schema version", err)
	equal(t, "schema version before migrating", v, 0)
	dbs := []*DB{f.db, f.open(t), f.open(t)}
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() { errs[i] = db.Migrate(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		noErr(t, fmt.Sprintf("migrate %d", i), err)
	}
	v, err = f.db.SchemaVersion(ctx)
	noErr(t, "schema version", err)
	equal(t, "schema version", v, LatestSchemaVersion())
}

func testMigrateFailure(t *testing.T, f *fixture) {
	ctx := context.Background()
	dir := "migrations/" + f.db.Dialect() + "/"
	bad := fstest.MapFS{
		dir + "0001_ok.sql":     {Data: []byte("CREATE TABLE step_one (x INTEGER);")},
		dir + "0002_broken.sql": {Data: []byte("CREATE TABLE step_two (x INTEGER);\nTHIS IS NOT SQL;")},
	}
	err := f.db.migrate(ctx, bad)
	if !errors.Is(err, ErrMigration) {
		t.Fatalf("migrate with a broken step: got %v, want %v", err, ErrMigration)
	}
	for _, want := range []string{"0002_broken.sql", f.db.where} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q: got no %q in it, want the step and the database named", err, want)
		}
	}
	v, err := f.db.SchemaVersion(ctx)
	noErr(t, "schema version", err)
	equal(t, "schema version after a failed migration", v, 0)
	// Step 1 ran in the same transaction as the broken step 2: creating
	// its table again succeeds only if it is gone.
	noErr(t, "apply the good step alone", f.db.migrate(ctx, fstest.MapFS{
		dir + "0001_ok.sql": {Data: []byte("CREATE TABLE step_one (x INTEGER);")},
	}))
	v, err = f.db.SchemaVersion(ctx)
	noErr(t, "schema version", err)
	equal(t, "schema version after the good step", v, 1)
}

func testNoSchema(t *testing.T, f *fixture) {
	ctx := context.Background()
	calls := map[string]func() error{
		"HasLike":          func() error { _, err := f.db.HasLike(ctx, 1, 1); return err },
		"HasLikes":         func() error { _, err := f.db.HasLikes(ctx, []Key{{1, 1}}); return err },
		"Bases":            func() error { _, err := f.db.Bases(ctx, []int64{1}, 0); return err },
		"CountRow":         func() error { _, _, err := f.db.CountRow(ctx, 1); return err },
		"CountLikes":       func() error { _, err := f.db.CountLikes(ctx, 1); return err },
		"CommittedOffsets": func() error { _, err := f.db.CommittedOffsets(ctx, "t"); return err },
		"PruneEffects":     func() error { _, err := f.db.PruneEffects(ctx, 1); return err },
	}
	txCalls := map[string]func(ctx context.Context, tx Tx) error{
		"LockOffsets": func(ctx context.Context, tx Tx) error { _, err := tx.LockOffsets(ctx, "t", []int32{0}); return err },
		"SetOffsets":  func(ctx context.Context, tx Tx) error { return tx.SetOffsets(ctx, "t", map[int32]int64{0: 1}) },
		"InsertLikes": func(ctx context.Context, tx Tx) error { _, err := tx.InsertLikes(ctx, likes(Key{1, 1})); return err },
		"DeleteLikes": func(ctx context.Context, tx Tx) error { _, err := tx.DeleteLikes(ctx, []Key{{1, 1}}); return err },
		"AddCounts":   func(ctx context.Context, tx Tx) error { _, err := tx.AddCounts(ctx, []PostDelta{{1, 1}}); return err },
		"AddEffects":  func(ctx context.Context, tx Tx) error { return tx.AddEffects(ctx, []Effect{{1, 1, 1}}) },
		"EffectsAbove": func(ctx context.Context, tx Tx) error {
			_, err := tx.EffectsAbove(ctx, []int64{1}, 0)
			return err
		},
	}
	for name, tc := range txCalls {
		calls["Tx."+name] = func() error { return f.db.Update(ctx, tc) }
	}
	for name, call := range calls {
		if err := call(); err == nil {
			t.Errorf("%s without a schema: got nil error, want one", name)
		} else if !strings.Contains(err.Error(), "like") && !strings.Contains(err.Error(), "offset") {
			t.Errorf("%s without a schema: got %q, want an error naming what failed", name, err)
		}
	}
}

func testInsertDuplicates(t *testing.T, f *fixture) {
	var first, second []bool
	update(t, f.db, func(ctx context.Context, tx Tx) (err error) {
		first, err = tx.InsertLikes(ctx, likes(Key{1, 10}, Key{1, 11}, Key{2, 10}))
		return err
	})
	equal(t, "inserted flags of new rows", first, []bool{true, true, true})
	update(t, f.db, func(ctx context.Context, tx Tx) (err error) {
		second, err = tx.InsertLikes(ctx, likes(Key{1, 11}, Key{1, 12}, Key{2, 10}, Key{3, 10}))
		return err
	})
	equal(t, "inserted flags with duplicates of stored rows", second, []bool{false, true, false, true})
	equal(t, "likes of post 1", countLikes(t, f.db, 1), int64(3))
	equal(t, "likes of post 2", countLikes(t, f.db, 2), int64(1))
	var empty []bool
	update(t, f.db, func(ctx context.Context, tx Tx) (err error) {
		empty, err = tx.InsertLikes(ctx, nil)
		return err
	})
	equal(t, "inserted flags of no rows", empty, []bool{})
}

func testDuplicateKeys(t *testing.T, f *fixture) {
	ctx := context.Background()
	calls := map[string]func(ctx context.Context, tx Tx) error{
		"InsertLikes": func(ctx context.Context, tx Tx) error {
			_, err := tx.InsertLikes(ctx, likes(Key{1, 1}, Key{1, 2}, Key{1, 1}))
			return err
		},
		"DeleteLikes": func(ctx context.Context, tx Tx) error {
			_, err := tx.DeleteLikes(ctx, []Key{{1, 5}, {1, 5}})
			return err
		},
		"AddCounts": func(ctx context.Context, tx Tx) error {
			_, err := tx.AddCounts(ctx, []PostDelta{{1, 1}, {2, 1}, {1, 1}})
			return err
		},
	}
	for name, call := range calls {
		err := f.db.Update(ctx, call)
		if !errors.Is(err, ErrDuplicateKey) {
			t.Errorf("%s with a repeated key: got %v, want %v", name, err, ErrDuplicateKey)
		}
	}
	equal(t, "likes of post 1", countLikes(t, f.db, 1), int64(0))
	_, ok, err := f.db.CountRow(ctx, 2)
	noErr(t, "count row", err)
	equal(t, "count row of post 2 exists", ok, false)
}

func testDeleteMissing(t *testing.T, f *fixture) {
	update(t, f.db, func(ctx context.Context, tx Tx) error {
		_, err := tx.InsertLikes(ctx, likes(Key{1, 1}, Key{1, 2}, Key{2, 1}))
		return err
	})
	var first, second []bool
	update(t, f.db, func(ctx context.Context, tx Tx) (err error) {
		first, err = tx.DeleteLikes(ctx, []Key{{1, 2}, {1, 3}, {2, 1}, {3, 1}})
		return err
	})
	equal(t, "deleted flags", first, []bool{true, false, true, false})
	update(t, f.db, func(ctx context.Context, tx Tx) (err error) {
		second, err = tx.DeleteLikes(ctx, []Key{{2, 1}, {1, 2}, {1, 1}})
		return err
	})
	equal(t, "deleted flags of keys deleted before", second, []bool{false, false, true})
	equal(t, "likes of post 1", countLikes(t, f.db, 1), int64(0))
	equal(t, "likes of post 2", countLikes(t, f.db, 2), int64(0))
}

func testLookups(t *testing.T, f *fixture) {
	ctx := context.Background()
	update(t, f.db, func(ctx context.Context, tx Tx) error {
		_, err := tx.InsertLikes(ctx, likes(Key{1, 1}, Key{1, 2}, Key{7, 1}))
		return err
	})
	for _, c := range []struct {
		k    Key
		want bool
	}{{Key{1, 1}, true}, {Key{1, 2}, true}, {Key{7, 1}, true}, {Key{1, 3}, false}, {Key{2, 1}, false}} {
		got, err := f.db.HasLike(ctx, c.k.Post, c.k.User)
		noErr(t, "has like", err)
		equal(t, fmt.Sprintf("HasLike(%d, %d)", c.k.Post, c.k.User), got, c.want)
	}
	got, err := f.db.HasLikes(ctx, []Key{{1, 3}, {1, 1}, {7, 1}, {1, 1}, {9, 9}, {1, 2}})
	noErr(t, "has likes", err)
	equal(t, "HasLikes with a repeated key", got, []bool{false, true, true, true, false, true})
	got, err = f.db.HasLikes(ctx, nil)
	noErr(t, "has likes of none", err)
	equal(t, "HasLikes of no keys", got, []bool{})
}

func testCounts(t *testing.T, f *fixture) {
	ctx := context.Background()
	var rows []CountRow
	update(t, f.db, func(ctx context.Context, tx Tx) (err error) {
		rows, err = tx.AddCounts(ctx, []PostDelta{{1, 3}, {2, 0}})
		return err
	})
	equal(t, "rows after the first add", rows, []CountRow{{1, 3, 1}, {2, 0, 1}})
	update(t, f.db, func(ctx context.Context, tx Tx) (err error) {
		rows, err = tx.AddCounts(ctx, []PostDelta{{3, 1}, {2, -1}, {1, 2}})
		return err
	})
	equal(t, "rows after the second add, in input order", rows, []CountRow{{3, 1, 1}, {2, -1, 2}, {1, 5, 2}})
	row, ok, err := f.db.CountRow(ctx, 1)
	noErr(t, "count row", err)
	equal(t, "count row of post 1", row, CountRow{1, 5, 2})
	equal(t, "count row of post 1 exists", ok, true)
	row, ok, err = f.db.CountRow(ctx, 4)
	noErr(t, "count row", err)
	equal(t, "count row of a post never counted", row, CountRow{})
	equal(t, "count row of a post never counted exists", ok, false)
}

func testEffects(t *testing.T, f *fixture) {
	ctx := context.Background()
	update(t, f.db, func(ctx context.Context, tx Tx) error {
		return tx.AddEffects(ctx, []Effect{{1, 10, 1}, {1, 10, 2}, {1, 11, -1}, {2, 10, 0}, {3, 12, 1}, {3, 12, -1}})
	})
	var got []int64
	update(t, f.db, func(ctx context.Context, tx Tx) (err error) {
		if err = tx.AddEffects(ctx, []Effect{{1, 11, 5}, {1, 13, 1}}); err != nil {
			return err
		}
		got, err = tx.EffectsAbove(ctx, []int64{1, 2, 3, 1, 4}, 9)
		return err
	})
	equal(t, "effects above bucket 9", got, []int64{3 + 4 + 1, 0, 0, 8, 0})
	update(t, f.db, func(ctx context.Context, tx Tx) (err error) {
		got, err = tx.EffectsAbove(ctx, []int64{1}, 11)
		return err
	})
	equal(t, "effects of post 1 above bucket 11", got, []int64{1})
	// Rows: (1,10) (1,11) (1,13). Post 2's zero delta and post 3's summing to
	// zero were skipped, so pruning everything deletes exactly three rows.
	n, err := f.db.PruneEffects(ctx, 11)
	noErr(t, "prune", err)
	equal(t, "rows pruned below bucket 11", n, int64(1))
	n, err = f.db.PruneEffects(ctx, 1000)
	noErr(t, "prune", err)
	equal(t, "rows pruned below bucket 1000", n, int64(2))
}

func testBases(t *testing.T, f *fixture) {
	ctx := context.Background()
	update(t, f.db, func(ctx context.Context, tx Tx) error {
		if _, err := tx.AddCounts(ctx, []PostDelta{{1, 4}, {2, 7}}); err != nil {
			return err
		}
		if _, err := tx.AddCounts(ctx, []PostDelta{{1, 2}}); err != nil { // post 1: count 6, version 2
			return err
		}
		return tx.AddEffects(ctx, []Effect{{1, 10, 1}, {1, 11, 2}, {1, 12, 1}, {2, 5, 7}, {9, 20, 3}})
	})
	cases := []struct {
		w    int64
		want []counts.Base
	}{
		{9, []counts.Base{{Count: 6 - 4, Watermark: 9, Version: 2}, {Count: 7, Watermark: 9, Version: 1}, {Count: 0, Watermark: 9, Version: 0}, {Count: 2, Watermark: 9, Version: 2}}},
		{11, []counts.Base{{Count: 6 - 1, Watermark: 11, Version: 2}, {Count: 7, Watermark: 11, Version: 1}, {Count: 0, Watermark: 11, Version: 0}, {Count: 5, Watermark: 11, Version: 2}}},
		{12, []counts.Base{{Count: 6, Watermark: 12, Version: 2}, {Count: 7, Watermark: 12, Version: 1}, {Count: 0, Watermark: 12, Version: 0}, {Count: 6, Watermark: 12, Version: 2}}},
		{4, []counts.Base{{Count: 6 - 4, Watermark: 4, Version: 2}, {Count: 0, Watermark: 4, Version: 1}, {Count: 0, Watermark: 4, Version: 0}, {Count: 2, Watermark: 4, Version: 2}}},
	}
	for _, c := range cases {
		got, err := f.db.Bases(ctx, []int64{1, 2, 3, 1}, c.w)
		noErr(t, "bases", err)
		equal(t, fmt.Sprintf("bases at watermark %d", c.w), got, c.want)
	}
	// A post with effects but no count row (9) gives Count 0 − its effects:
	// the formula, not a special case.
	got, err := f.db.Bases(ctx, []int64{9}, 0)
	noErr(t, "bases", err)
	equal(t, "base of a post with effects and no count row", got, []counts.Base{{Count: -3, Watermark: 0, Version: 0}})
	got, err = f.db.Bases(ctx, nil, 0)
	noErr(t, "bases of none", err)
	equal(t, "bases of no posts", got, []counts.Base{})
}

func testOffsets(t *testing.T, f *fixture) {
	ctx := context.Background()
	var got map[int32]int64
	update(t, f.db, func(ctx context.Context, tx Tx) (err error) {
		if got, err = tx.LockOffsets(ctx, "events", []int32{0, 1}); err != nil {
			return err
		}
		return tx.SetOffsets(ctx, "events", map[int32]int64{0: 10, 1: 5})
	})
	equal(t, "offsets of new partitions", got, map[int32]int64{0: 0, 1: 0})
	update(t, f.db, func(ctx context.Context, tx Tx) (err error) {
		if got, err = tx.LockOffsets(ctx, "events", []int32{1, 2}); err != nil {
			return err
		}
		return tx.SetOffsets(ctx, "other", map[int32]int64{1: 99})
	})
	equal(t, "offsets of partitions 1 and 2", got, map[int32]int64{1: 5, 2: 0})
	got, err := f.db.CommittedOffsets(ctx, "events")
	noErr(t, "committed offsets", err)
	equal(t, "committed offsets of events", got, map[int32]int64{0: 10, 1: 5, 2: 0})
	got, err = f.db.CommittedOffsets(ctx, "other")
	noErr(t, "committed offsets", err)
	equal(t, "committed offsets of other", got, map[int32]int64{1: 99})
	got, err = f.db.CommittedOffsets(ctx, "never")
	noErr(t, "committed offsets", err)
	equal(t, "committed offsets of an unknown topic", got, map[int32]int64{})
}

func testRollback(t *testing.T, f *fixture) {
	ctx := context.Background()
	boom := errors.New("boom")
	writeAll := func(ctx context.Context, tx Tx) error {
		if _, err := tx.LockOffsets(ctx, "events", []int32{0}); err != nil {
			return err
		}
		if _, err := tx.InsertLikes(ctx, likes(Key{1, 1}, Key{1, 2})); err != nil {
			return err
		}
		if _, err := tx.AddCounts(ctx, []PostDelta{{1, 2}}); err != nil {
			return err
		}
		if err := tx.AddEffects(ctx, []Effect{{1, 10, 2}}); err != nil {
			return err
		}
		return tx.SetOffsets(ctx, "events", map[int32]int64{0: 2})
	}
	err := f.db.Update(ctx, func(ctx context.Context, tx Tx) error {
		if err := writeAll(ctx, tx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update returning an error: got %v, want %v", err, boom)
	}
	func() {
		defer func() {
			if p := recover(); p != "panic in update" {
				t.Fatalf("recovered: got %v, want the panic to continue", p)
			}
		}()
		_ = f.db.Update(ctx, func(ctx context.Context, tx Tx) error {
			if err := writeAll(ctx, tx); err != nil {
				return err
			}
			panic("panic in update")
		})
	}()
	cctx, cancel := context.WithCancel(ctx)
	err = f.db.Update(cctx, func(ctx context.Context, tx Tx) error {
		if err := writeAll(ctx, tx); err != nil {
			return err
		}
		cancel()
		return nil
	})
	if err == nil {
		t.Fatalf("update whose context ended before commit: got nil error, want one")
	}
	assertEmpty := func() {
		t.Helper()
		equal(t, "likes of post 1", countLikes(t, f.db, 1), int64(0))
		_, ok, err := f.db.CountRow(ctx, 1)
		noErr(t, "count row", err)
		equal(t, "count row of post 1 exists", ok, false)
		offs, err := f.db.CommittedOffsets(ctx, "events")
		noErr(t, "committed offsets", err)
		equal(t, "committed offsets", offs, map[int32]int64{})
		bases, err := f.db.Bases(ctx, []int64{1}, 0)
		noErr(t, "bases", err)
		equal(t, "bases (no effects)", bases, []counts.Base{{}})
	}
	assertEmpty()
	// The connection and, on SQLite, the write lock were released: the
	// same work commits now.
	update(t, f.db, writeAll)
	equal(t, "likes of post 1 after a good update", countLikes(t, f.db, 1), int64(2))
}

func testSerialize(t *testing.T, f *fixture) {
	const perWorker = 25
	ctx := context.Background()
	// Each transaction reads the offset, makes another round trip, then
	// writes offset+1: without the row lock two of them would read the
	// same offset and one increment would be lost.
	step := func(db *DB) error {
		return db.Update(ctx, func(ctx context.Context, tx Tx) error {
			offs, err := tx.LockOffsets(ctx, "events", []int32{3})
			if err != nil {
				return err
			}
			if _, err := tx.AddCounts(ctx, []PostDelta{{42, 1}}); err != nil {
				return err
			}
			return tx.SetOffsets(ctx, "events", map[int32]int64{3: offs[3] + 1})
		})
	}
	dbs := []*DB{f.db, f.open(t)} // two pools, as two consumer processes
	errs := make(chan error, len(dbs))
	var wg sync.WaitGroup
	for _, db := range dbs {
		wg.Go(func() {
			for range perWorker {
				if err := step(db); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent update: %v", err)
	}
	offs, err := f.db.CommittedOffsets(ctx, "events")
	noErr(t, "committed offsets", err)
	equal(t, "offset after concurrent updates", offs[3], int64(len(dbs)*perWorker))
	row, _, err := f.db.CountRow(ctx, 42)
	noErr(t, "count row", err)
	equal(t, "count row after concurrent updates", row, CountRow{42, len64(dbs) * perWorker, len64(dbs) * perWorker})
}

func len64[T any](s []T) int64 { return int64(len(s)) }

func testLargeBatch(t *testing.T, f *fixture) {
	if f.v.maxVars > 0 {
		t.Skip("5,000 one-row chunks prove nothing the small cases do not")
	}
	ctx := context.Background()
	const n = 5000
	rows := make([]Like, n)
	keys := make([]Key, n)
	for i := range rows {
		rows[i] = Like{Post: int64(i % 7), User: int64(i), At: at}
		keys[i] = Key{int64(i % 7), int64(i)}
	}
	var ins1, ins2, del []bool
	update(t, f.db, func(ctx context.Context, tx Tx) (err error) {
		ins1, err = tx.InsertLikes(ctx, rows[:n/2])
		return err
	})
	update(t, f.db, func(ctx context.Context, tx Tx) (err error) {
		ins2, err = tx.InsertLikes(ctx, rows)
		return err
	})
	for i := range n {
		if i < n/2 && !ins1[i] {
			t.Fatalf("first insert, row %d: got not inserted, want inserted", i)
		}
		if got, want := ins2[i], i >= n/2; got != want {
			t.Fatalf("second insert, row %d: got inserted %v, want %v", i, got, want)
		}
	}
	has, err := f.db.HasLikes(ctx, keys)
	noErr(t, "has likes", err)
	for i, h := range has {
		if !h {
			t.Fatalf("HasLikes[%d]: got false, want true", i)
		}
	}
	var total int64
	for p := range int64(7) {
		total += countLikes(t, f.db, p)
	}
	equal(t, "likes rows", total, int64(n))
	update(t, f.db, func(ctx context.Context, tx Tx) (err error) {
		del, err = tx.DeleteLikes(ctx, keys[n/4:])
		return err
	})
	for i, d := range del {
		if !d {
			t.Fatalf("deleted[%d]: got false, want true", i)
		}
	}
	total = 0
	for p := range int64(7) {
		total += countLikes(t, f.db, p)
	}
	equal(t, "likes rows after deleting three quarters", total, int64(n/4))
}
