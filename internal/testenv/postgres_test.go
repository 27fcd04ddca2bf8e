package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var name string

	t.Run("a fresh empty database is created and usable", func(t *testing.T) {
		u := Postgres(t)
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatalf("connect %s: %v", u, err)
		}
		// Left open on purpose: the drop must force it closed.
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatalf("current_database: %v", err)
		}
		if !strings.HasPrefix(name, "likes_t_") || !strings.Contains(u, "/"+name) {
			t.Errorf("got database %q at %s, want likes_t_<random> named in the URL", name, u)
		}
		var tables int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&tables); err != nil {
			t.Fatalf("count tables: %v", err)
		}
		if tables != 0 {
			t.Errorf("got %d tables, want 0", tables)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE likes (post_id bigint, user_id bigint)"); err != nil {
			t.Errorf("create table: %v", err)
		}
	})

	t.Run("the database is dropped at cleanup", func(t *testing.T) {
		if name == "" {
			t.Fatal("no database was created")
		}
		conn, err := pgx.Connect(ctx, DefaultPostgresURL)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(context.Background())
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatalf("query pg_database: %v", err)
		}
		if n != 0 {
			t.Errorf("got %d databases named %s, want 0", n, name)
		}
	})

	t.Run("two calls give two databases", func(t *testing.T) {
		a, b := Postgres(t), Postgres(t)
		if a == b {
			t.Errorf("got the same URL twice %s, want two databases", a)
		}
	})

	t.Run("an unreachable server fails the test with a hint", func(t *testing.T) {
		t.Setenv(PostgresURLEnv, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
		f := runFake(t, func(tb testing.TB) { Postgres(tb) })
		if len(f.fatals) != 1 || !strings.Contains(f.fatals[0], "scripts/test.sh") {
			t.Errorf("got fatals %q, want one naming scripts/test.sh", f.fatals)
		}
	})
}
