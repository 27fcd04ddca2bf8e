package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresURLEnv names the environment variable holding the URL of the
// PostgreSQL database that [Postgres] connects to in order to create and drop
// test databases. scripts/test.sh sets it when it configures a password.
const PostgresURLEnv = "LIKES_TEST_PG_URL"

// DefaultPostgresURL is used when PostgresURLEnv is unset or empty.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// pgTimeout bounds CREATE DATABASE and DROP DATABASE.
const pgTimeout = 30 * time.Second

// Postgres creates a fresh, empty database named likes_t_<random hex> on the
// machine's PostgreSQL (reached through the URL in $LIKES_TEST_PG_URL, by
// default [DefaultPostgresURL]) and returns a URL for it: the base URL with
// the database name replaced. The database is dropped WITH (FORCE) at
// cleanup, closing any connection the test left open. It fails the test if
// PostgreSQL is unreachable (run scripts/test.sh, which starts it).
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresURLEnv)
	if base == "" {
		base = DefaultPostgresURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("testenv: %s=%q is not a postgres:// URL (err %v)", PostgresURLEnv, base, err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	name := "likes_t_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	if err := pgExec(ctx, base, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: postgres at %s: create database %s: %v (run scripts/test.sh, which installs and starts PostgreSQL)", redactURL(u), name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
		defer cancel()
		if err := pgExec(ctx, base, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: postgres: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// pgExec runs one statement on a fresh connection to url. CREATE/DROP
// DATABASE cannot run inside a transaction, so no pool and no tx.
func pgExec(ctx context.Context, url, sql string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return err
	}
	return nil
}

func redactURL(u *url.URL) string { return u.Redacted() }
