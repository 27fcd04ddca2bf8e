package store

import (
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/likes-sidecar/likes/internal/testenv"
)

func TestParseURL(t *testing.T) {
	t.Run("supported URLs select their dialect", func(t *testing.T) {
		for _, c := range []struct {
			url, dialect, conn, where string
		}{
			{"postgres://app:pw@db:5432/likes?sslmode=disable", DialectPostgres, "postgres://app:pw@db:5432/likes?sslmode=disable", "postgres://app@db:5432/likes"},
			{"postgresql://db/likes", DialectPostgres, "postgresql://db/likes", "postgres://db/likes"},
			{"POSTGRES://db/likes", DialectPostgres, "POSTGRES://db/likes", "postgres://db/likes"},
			{"sqlite:///var/lib/likes.db", DialectSQLite, "/var/lib/likes.db", "/var/lib/likes.db"},
			{"sqlite://likes.db", DialectSQLite, "likes.db", "likes.db"},
			{"sqlite:likes.db", DialectSQLite, "likes.db", "likes.db"},
			{"sqlite::memory:", DialectSQLite, ":memory:", ":memory:"},
		} {
			got, err := parseURL(c.url)
			if err != nil {
				t.Fatalf("parse %q: got %v, want no error", c.url, err)
			}
			if got.dialect != c.dialect || got.conn != c.conn || got.where != c.where {
				t.Errorf("parse %q: got %q %q %q, want %q %q %q", c.url, got.dialect, got.conn, got.where, c.dialect, c.conn, c.where)
			}
		}
	})
	t.Run("anything else is a bad URL that never shows its password", func(t *testing.T) {
		for _, u := range []string{
			"",
			"likes.db",
			"mysql://root:hunter2@db/likes",
			"sqlite:",
			"sqlite://",
			"sqlite:x.db?mode=ro",
			"postgres://user:hunter2@db:port/likes",
			"postgres://user:hunter2@[::1/likes",
			"user:hunter2@db/likes",
			"c:\\likes.db",
		} {
			_, err := parseURL(u)
			if !errors.Is(err, ErrBadURL) {
				t.Errorf("parse %q: got %v, want %v", u, err, ErrBadURL)
				continue
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("parse %q: got %q, want no password in it", u, err)
			}
		}
	})
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.URL = "sqlite:x.db"
	if err := good.Validate(); err != nil {
		t.Fatalf("default config with a URL: got %v, want nil", err)
	}
	for _, c := range []struct {
		key    string
		mutate func(*Config)
	}{
		{"db.url", func(c *Config) { c.URL = "" }},
		{"db.url", func(c *Config) { c.URL = "redis://x" }},
		{"db.max_conns", func(c *Config) { c.MaxConns = -1 }},
		{"db.connect_timeout", func(c *Config) { c.ConnectTimeout = 0 }},
		{"db.busy_timeout", func(c *Config) { c.BusyTimeout = 0 }},
	} {
		cfg := good
		c.mutate(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.key+":") {
			t.Errorf("invalid %s: got %v, want an error naming %s", c.key, err, c.key)
		}
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	t.Run("an unreachable server is an error naming it without the password", func(t *testing.T) {
		port := testenv.FreePort(t) // nothing listens there
		cfg := DefaultConfig()
		cfg.URL = fmt.Sprintf("postgres://likes:hunter2@127.0.0.1:%d/likes?sslmode=disable", port)
		cfg.ConnectTimeout = 2 * time.Second
		start := time.Now()
		db, err := OpenConfig(ctx, cfg)
		if err == nil {
			db.Close()
			t.Fatalf("open: got a database, want an error")
		}
		msg := err.Error()
		if want := fmt.Sprintf("127.0.0.1:%d/likes", port); !strings.Contains(msg, want) {
			t.Errorf("error %q: got no %q in it, want the server named", msg, want)
		}
		if strings.Contains(msg, "hunter2") {
			t.Errorf("error %q: got the password in it, want it hidden", msg)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("open took %v, want it bounded by the connect timeout", d)
		}
	})
	t.Run("a wrong password is an error without the password", func(t *testing.T) {
		u := testenv.Postgres(t)
		u = strings.Replace(u, "://postgres@", "://no_such_role:hunter2@", 1)
		db, err := Open(ctx, u)
		if err == nil {
			db.Close()
			t.Fatalf("open as an unknown role: got a database, want an error")
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q: got the password in it, want it hidden", err)
		}
	})
	t.Run("a bad URL is ErrBadURL", func(t *testing.T) {
		for _, u := range []string{"mysql://db/likes", "postgres://db/likes?sslmode=bogus", "postgres://db/likes?connect_timeout=x"} {
			db, err := Open(ctx, u)
			if !errors.Is(err, ErrBadURL) {
				if db != nil {
					db.Close()
				}
				t.Errorf("open %q: got %v, want %v", u, err, ErrBadURL)
			}
		}
	})
	t.Run("a SQLite file in a missing directory is an error naming the path", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing", "likes.db")
		db, err := Open(ctx, "sqlite:"+path)
		if err == nil {
			db.Close()
			t.Fatalf("open: got a database, want an error")
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q: got no path in it, want %q", err, path)
		}
	})
	t.Run("each dialect reports its name and answers pings", func(t *testing.T) {
		for _, c := range []struct{ url, dialect string }{
			{testenv.Postgres(t), DialectPostgres},
			{"sqlite:" + filepath.Join(t.TempDir(), "likes.db"), DialectSQLite},
			{"sqlite::memory:", DialectSQLite},
		} {
			db, err := Open(ctx, c.url)
			if err != nil {
				t.Fatalf("open %s: %v", c.dialect, err)
			}
			if got := db.Dialect(); got != c.dialect {
				t.Errorf("dialect: got %q, want %q", got, c.dialect)
			}
			if err := db.Ping(ctx); err != nil {
				t.Errorf("ping %s: got %v, want nil", c.dialect, err)
			}
			if err := db.Migrate(ctx); err != nil {
				t.Errorf("migrate %s: got %v, want nil", c.dialect, err)
			}
			if err := db.Close(); err != nil {
				t.Errorf("close %s: got %v, want nil", c.dialect, err)
			}
		}
	})
	t.Run("SQLite runs in WAL mode with a busy timeout", func(t *testing.T) {
		db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "likes.db"))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer db.Close()
		var mode string
		var busy int
		if err := db.sq.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := db.sq.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || busy != int(DefaultConfig().BusyTimeout.Milliseconds()) {
			t.Errorf("journal mode, busy timeout: got %s %d, want wal %d", mode, busy, DefaultConfig().BusyTimeout.Milliseconds())
		}
	})
}

func TestMergeEffects(t *testing.T) {
	got := mergeEffects([]Effect{{2, 5, 1}, {1, 9, 0}, {1, 7, 2}, {2, 5, -1}, {1, 7, 1}, {1, 3, -4}, {3, 1, 1}})
	want := []Effect{{1, 3, -4}, {1, 7, 3}, {3, 1, 1}}
	equal(t, "merged effects", got, want)
	equal(t, "merged effects of none", mergeEffects(nil), []Effect{})
}

func TestPackageDoc(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil || !strings.HasPrefix(f.Doc.Text(), "Package store ") {
		t.Fatalf("doc.go: got no package doc, want one starting \"Package store \"")
	}
}

func TestMigrationsMatchAcrossDialects(t *testing.T) {
	pg, err := loadMigrations(migrationsFS, DialectPostgres)
	noErr(t, "load postgres migrations", err)
	sq, err := loadMigrations(migrationsFS, DialectSQLite)
	noErr(t, "load sqlite migrations", err)
	names := func(ms []migration) (s []string) {
		for _, m := range ms {
			s = append(s, m.name)
		}
		return s
	}
	equal(t, "sqlite steps", names(sq), names(pg))
	equal(t, "latest schema version", LatestSchemaVersion(), len(pg))
	if len(pg) == 0 {
		t.Fatalf("migrations: got none, want at least one step")
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"postgres://app:pw@db:5432/likes?sslmode=disable",
		"postgresql://db/likes?password=pw",
		"sqlite:///var/lib/likes.db",
		"sqlite:likes.db",
		"sqlite::memory:",
		"mysql://root:pw@db/likes",
		"postgres://u:p%40ss@[::1]:5432/x",
		"postgres://u:pw@db:port/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tg, err := parseURL(raw)
		if err != nil {
			if !errors.Is(err, ErrBadURL) {
				t.Fatalf("parse %q: got %v, want an ErrBadURL", raw, err)
			}
			return
		}
		switch tg.dialect {
		case DialectSQLite:
			if tg.conn == "" || strings.ContainsAny(tg.conn, "?#\x00") {
				t.Fatalf("parse %q: got SQLite path %q, want a non-empty path without ? # NUL", raw, tg.conn)
			}
		case DialectPostgres:
			if tg.conn != raw {
				t.Fatalf("parse %q: got connection string %q, want the URL unchanged", raw, tg.conn)
			}
			for _, s := range tg.secrets {
				if len(s) >= 4 && strings.Contains(tg.where, s) {
					t.Fatalf("parse %q: got %q naming the database, want the password %q hidden", raw, tg.where, s)
				}
			}
		default:
			t.Fatalf("parse %q: got dialect %q", raw, tg.dialect)
		}
	})
}

// statementCounter is a pgx.QueryTracer that counts statements.
type statementCounter struct {
	mu   sync.Mutex
	sqls []string
}

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.mu.Lock()
	c.sqls = append(c.sqls, d.SQL)
	c.mu.Unlock()
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *statementCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sqls
	c.sqls = nil
	return s
}

func TestPostgresBatchesAreOneStatement(t *testing.T) {
	ctx := context.Background()
	counter := &statementCounter{}
	cfg := DefaultConfig()
	cfg.URL = testenv.Postgres(t)
	cfg.tracer = counter
	db, err := OpenConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	noErr(t, "migrate", db.Migrate(ctx))
	const n = 5000
	rows := make([]Like, n)
	keys := make([]Key, n)
	posts := make([]int64, n)
	deltas := make([]PostDelta, n)
	effects := make([]Effect, n)
	for i := range n {
		rows[i] = Like{Post: int64(i), User: 1, At: at}
		keys[i] = Key{int64(i), 1}
		posts[i] = int64(i)
		deltas[i] = PostDelta{int64(i), 1}
		effects[i] = Effect{int64(i), 7, 1}
	}
	for _, c := range []struct {
		name string
		call func(ctx context.Context, tx Tx) error
	}{
		{"InsertLikes", func(ctx context.Context, tx Tx) error { _, err := tx.InsertLikes(ctx, rows); return err }},
		{"DeleteLikes", func(ctx context.Context, tx Tx) error { _, err := tx.DeleteLikes(ctx, keys); return err }},
		{"AddCounts", func(ctx context.Context, tx Tx) error { _, err := tx.AddCounts(ctx, deltas); return err }},
		{"AddEffects", func(ctx context.Context, tx Tx) error { return tx.AddEffects(ctx, effects) }},
		{"EffectsAbove", func(ctx context.Context, tx Tx) error { _, err := tx.EffectsAbove(ctx, posts, 0); return err }},
	} {
		counter.take()
		update(t, db, c.call)
		// begin, the call, commit
		if got := counter.take(); len(got) != 3 {
			t.Errorf("%s of %d rows: got %d statements %q, want begin, one statement, commit", c.name, n, len(got), got)
		}
	}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"HasLikes", func() error { _, err := db.HasLikes(ctx, keys); return err }},
		{"Bases", func() error { _, err := db.Bases(ctx, posts, 0); return err }},
	} {
		counter.take()
		noErr(t, c.name, c.call())
		if got := counter.take(); len(got) != 1 {
			t.Errorf("%s of %d keys: got %d statements, want 1", c.name, n, len(got))
		}
	}
}
