package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/likes-sidecar/likes/auth"
	"github.com/likes-sidecar/likes/devstack"

	_ "modernc.org/sqlite" // database/sql driver "sqlite" for the embedded naive-db
)

// The naive designs of the seed's story, behind the same HTTP contract as
// the sidecar (routes, status codes, JSON bodies, the same JWT
// authentication and write deadline), so that only the design differs.

// naiveStore is where a naive design keeps likes.
type naiveStore interface {
	like(ctx context.Context, post, user int64) (added bool, err error)
	unlike(ctx context.Context, post, user int64) (removed bool, err error)
	count(ctx context.Context, post int64) (int64, error)
}

// naiveAPI serves the like API over a naiveStore. Safe for concurrent use.
type naiveAPI struct {
	auth         *auth.Authenticator
	st           naiveStore
	writeTimeout time.Duration
	readTimeout  time.Duration
	written      atomic.Int64 // rows inserted or deleted
}

func newNaiveAPI(secret string, st naiveStore) (*naiveAPI, http.Handler, error) {
	ac := auth.DefaultConfig()
	ac.Mode, ac.JWTSecret = "jwt", secret
	a, err := auth.New(ac, nil)
	if err != nil {
		return nil, nil, err
	}
	n := &naiveAPI{auth: a, st: st, writeTimeout: 200 * time.Millisecond, readTimeout: time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /posts/{id}/likes", func(w http.ResponseWriter, r *http.Request) { n.write(w, r, true) })
	mux.HandleFunc("DELETE /posts/{id}/likes", func(w http.ResponseWriter, r *http.Request) { n.write(w, r, false) })
	mux.HandleFunc("GET /posts/{id}/likes/count", n.read)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNotFound, `{"error":"not_found","message":"no such route"}`)
	})
	return n, mux, nil
}

func reply(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	if status == http.StatusServiceUnavailable {
		h["Retry-After"] = []string{"1"}
	}
	w.WriteHeader(status)
	w.Write([]byte(body))
}

func postID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}

func (n *naiveAPI) write(w http.ResponseWriter, r *http.Request, like bool) {
	post, ok := postID(r)
	if !ok {
		reply(w, http.StatusBadRequest, `{"error":"bad_post_id","message":"post id must be a positive integer"}`)
		return
	}
	user, err := n.auth.Authenticate(r.Header.Get("Authorization"), "")
	if err != nil {
		reply(w, http.StatusUnauthorized, `{"error":"unauthorized","message":"missing or invalid token"}`)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), n.writeTimeout)
	defer cancel()
	var changed bool
	if like {
		changed, err = n.st.like(ctx, post, user)
	} else {
		changed, err = n.st.unlike(ctx, post, user)
	}
	switch {
	case err != nil:
		reply(w, http.StatusServiceUnavailable, `{"error":"unavailable","message":"the store did not answer in time"}`)
	case !changed && like:
		reply(w, http.StatusConflict, `{"error":"already_liked","message":"already liked"}`)
	case !changed:
		reply(w, http.StatusNotFound, `{"error":"not_liked","message":"not liked"}`)
	default:
		n.written.Add(1)
		reply(w, http.StatusOK, `{"liked":`+strconv.FormatBool(like)+`,"post_id":`+strconv.FormatInt(post, 10)+`,"user_id":`+strconv.FormatInt(user, 10)+`}`)
	}
}

func (n *naiveAPI) read(w http.ResponseWriter, r *http.Request) {
	post, ok := postID(r)
	if !ok {
		reply(w, http.StatusBadRequest, `{"error":"bad_post_id","message":"post id must be a positive integer"}`)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), n.readTimeout)
	defer cancel()
	c, err := n.st.count(ctx, post)
	if err != nil {
		reply(w, http.StatusServiceUnavailable, `{"error":"unavailable","message":"the store did not answer in time"}`)
		return
	}
	w.Header()["Cache-Control"] = []string{"public, max-age=1"}
	reply(w, http.StatusOK, `{"post_id":`+strconv.FormatInt(post, 10)+`,"count":`+strconv.FormatInt(c, 10)+`,"is_approximate":false}`)
}

// naiveSystem runs a naiveAPI on loopback.
type naiveSystem struct {
	api         *naiveAPI
	addr        string
	stop        func()
	sentCounter commandCounter // nil with execCounter nil: the design does not use Redis
	execCounter commandCounter
	truthFn     func(ctx context.Context, post int64) (int64, error)
	name        string
	note        string
	cleanups    []func()
}

func (s *naiveSystem) addrs() []string { return []string{s.addr} }

func (s *naiveSystem) sample(ctx context.Context) sample {
	out := sample{rss: selfRSS(), dbRows: float64(s.api.written.Load())}
	if s.sentCounter != nil || s.execCounter != nil {
		out.sent, out.sentErr = countWith(ctx, s.sentCounter, errNoProxy)
		out.exec, out.execErr = countWith(ctx, s.execCounter, errNoCommandStats)
	}
	return out
}

func (s *naiveSystem) settle(context.Context) error { return nil }

func (s *naiveSystem) truth(ctx context.Context, post int64) (int64, error) {
	return s.truthFn(ctx, post)
}

func (s *naiveSystem) rowsName() string { return s.name }
func (s *naiveSystem) notes() []string  { return []string{s.note} }
func (s *naiveSystem) rssSource() string {
	return "this process: server, store clients and load generator together"
}

func (s *naiveSystem) close() error {
	if s.stop != nil {
		s.stop()
	}
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	return nil
}

// --- naive-db -------------------------------------------------------------

const naiveTable = "bench_naive_likes"

// naiveDBConns is the naive design's database pool: what a typical app
// server would configure.
const naiveDBConns = 32

type pgNaive struct{ pool *pgxpool.Pool }

func (p pgNaive) like(ctx context.Context, post, user int64) (bool, error) {
	t, err := p.pool.Exec(ctx, `INSERT INTO `+naiveTable+` (post_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, post, user)
	return t.RowsAffected() == 1, err
}

func (p pgNaive) unlike(ctx context.Context, post, user int64) (bool, error) {
	t, err := p.pool.Exec(ctx, `DELETE FROM `+naiveTable+` WHERE post_id = $1 AND user_id = $2`, post, user)
	return t.RowsAffected() == 1, err
}

func (p pgNaive) count(ctx context.Context, post int64) (int64, error) {
	var n int64
	err := p.pool.QueryRow(ctx, `SELECT count(*) FROM `+naiveTable+` WHERE post_id = $1`, post).Scan(&n)
	return n, err
}

type sqlNaive struct{ db *sql.DB }

func (q sqlNaive) like(ctx context.Context, post, user int64) (bool, error) {
	r, err := q.db.ExecContext(ctx, `INSERT INTO `+naiveTable+` (post_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, post, user)
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n == 1, err
}

func (q sqlNaive) unlike(ctx context.Context, post, user int64) (bool, error) {
	r, err := q.db.ExecContext(ctx, `DELETE FROM `+naiveTable+` WHERE post_id = $1 AND user_id = $2`, post, user)
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n == 1, err
}

func (q sqlNaive) count(ctx context.Context, post int64) (int64, error) {
	var n int64
	err := q.db.QueryRowContext(ctx, `SELECT count(*) FROM `+naiveTable+` WHERE post_id = $1`, post).Scan(&n)
	return n, err
}

const naiveDDL = `CREATE TABLE IF NOT EXISTS ` + naiveTable + ` (post_id BIGINT NOT NULL, user_id BIGINT NOT NULL, PRIMARY KEY (post_id, user_id))`

func startNaiveDB(ctx context.Context, e *environment, run string, posts []int64) (_ system, err error) {
	s := &naiveSystem{name: "table rows"}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	var st naiveStore
	lo, hi := posts[0], posts[len(posts)-1]
	if e.real {
		pc, err := pgxpool.ParseConfig(e.cfg.DBURL)
		if err != nil {
			return nil, fmt.Errorf("naive-db: --db-url: %w", err)
		}
		pc.MaxConns = naiveDBConns
		pool, err := pgxpool.NewWithConfig(ctx, pc)
		if err != nil {
			return nil, fmt.Errorf("naive-db: connect: %w", err)
		}
		s.cleanups = append(s.cleanups, pool.Close)
		if _, err := pool.Exec(ctx, naiveDDL); err != nil {
			return nil, fmt.Errorf("naive-db: create table: %w", err)
		}
		s.cleanups = append(s.cleanups, func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			pool.Exec(ctx, `DELETE FROM `+naiveTable+` WHERE post_id BETWEEN $1 AND $2`, lo, hi)
		})
		st = pgNaive{pool}
		s.note = fmt.Sprintf("naive-db: one INSERT … ON CONFLICT per like, COUNT(*) per read, on PostgreSQL (%s), pool of %d connections", redactURL(e.cfg.DBURL), naiveDBConns)
	} else {
		dir, err := e.dataDir("naive-db-" + run)
		if err != nil {
			return nil, err
		}
		q := url.Values{}
		q.Set("_busy_timeout", "5000")
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "FULL")
		db, err := sql.Open("sqlite", filepath.Join(dir, "naive.db")+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("naive-db: open sqlite: %w", err)
		}
		db.SetMaxOpenConns(4)
		s.cleanups = append(s.cleanups, func() { db.Close() })
		if _, err := db.ExecContext(ctx, naiveDDL); err != nil {
			return nil, fmt.Errorf("naive-db: create table: %w", err)
		}
		st = sqlNaive{db}
		s.note = "naive-db: one INSERT … ON CONFLICT per like, COUNT(*) per read, on an EMBEDDED SQLite file (stand-in for PostgreSQL: pass --db-url for the real thing)"
	}
	s.truthFn = st.count
	api, h, err := newNaiveAPI(e.cfg.Secret, st)
	if err != nil {
		return nil, err
	}
	s.api = api
	if s.addr, s.stop, err = serveHTTP(h); err != nil {
		return nil, err
	}
	return s, nil
}

// --- naive-redis ----------------------------------------------------------

type redisNaive struct{ rdb redis.UniversalClient }

// Both keys of a post share a hash tag: one slot, one node, as a naive
// design on a cluster would have it.
func naiveKeys(post int64) (likers, count string) {
	p := strconv.FormatInt(post, 10)
	return "bench:naive:{" + p + "}:likers", "bench:naive:{" + p + "}:count"
}

func (r redisNaive) like(ctx context.Context, post, user int64) (bool, error) {
	likers, count := naiveKeys(post)
	n, err := r.rdb.SAdd(ctx, likers, user).Result()
	if err != nil || n == 0 {
		return false, err
	}
	return true, r.rdb.Incr(ctx, count).Err()
}

func (r redisNaive) unlike(ctx context.Context, post, user int64) (bool, error) {
	likers, count := naiveKeys(post)
	n, err := r.rdb.SRem(ctx, likers, user).Result()
	if err != nil || n == 0 {
		return false, err
	}
	return true, r.rdb.Decr(ctx, count).Err()
}

func (r redisNaive) count(ctx context.Context, post int64) (int64, error) {
	_, count := naiveKeys(post)
	n, err := r.rdb.Get(ctx, count).Int64()
	if err == redis.Nil {
		return 0, nil
	}
	return n, err
}

func startNaiveRedis(ctx context.Context, e *environment, run string, posts []int64) (_ system, err error) {
	s := &naiveSystem{name: "likers set size"}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	var addrs []string
	if e.real {
		addrs = e.cfg.RedisAddrs
		s.note = fmt.Sprintf("naive-redis: SADD + INCR on one key per like, GET per read, on redis-server at %v", addrs)
		direct := newRedisClient(addrs)
		s.cleanups = append(s.cleanups, func() { direct.Close() })
		s.execCounter = infoCounter{rdb: direct}
		if len(addrs) == 1 {
			proxy, err := startRedisProxy(addrs[0])
			if err != nil {
				return nil, err
			}
			s.cleanups = append(s.cleanups, proxy.close)
			s.sentCounter = proxy
			addrs = []string{proxy.addr()}
		}
	} else {
		stack, err := devstack.Start(devstack.Options{Topic: "unused"})
		if err != nil {
			return nil, err
		}
		s.cleanups = append(s.cleanups, stack.Close)
		proxy, err := startRedisProxy(stack.RedisAddr)
		if err != nil {
			return nil, err
		}
		s.cleanups = append(s.cleanups, proxy.close)
		s.sentCounter = proxy
		addrs = []string{proxy.addr()}
		s.note = "naive-redis: SADD + INCR on one key per like, GET per read, on EMBEDDED miniredis (stand-in: pass --redis-addrs for redis-server)"
	}
	rdb := newRedisClient(addrs)
	s.cleanups = append(s.cleanups, func() { rdb.Close() })
	if e.real {
		s.cleanups = append(s.cleanups, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, p := range posts {
				likers, count := naiveKeys(p)
				rdb.Del(ctx, likers)
				rdb.Del(ctx, count)
			}
		})
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("naive-redis: %w", err)
	}
	st := redisNaive{rdb}
	s.truthFn = func(ctx context.Context, post int64) (int64, error) {
		likers, _ := naiveKeys(post)
		return rdb.SCard(ctx, likers).Result()
	}
	api, h, err := newNaiveAPI(e.cfg.Secret, st)
	if err != nil {
		return nil, err
	}
	s.api = api
	if s.addr, s.stop, err = serveHTTP(h); err != nil {
		return nil, err
	}
	return s, nil
}

// --- bare-http ------------------------------------------------------------

// bareSystem answers every like 200 and every count 0 without doing
// anything: the ceiling of HTTP on loopback with this load generator.
type bareSystem struct {
	addr string
	stop func()
}

func startBare() (system, error) {
	like := []byte(`{"liked":true}`)
	count := []byte(`{"count":0,"is_approximate":true}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := like
		if r.Method == http.MethodGet {
			body = count
		}
		hd := w.Header()
		hd["Content-Type"] = []string{"application/json"}
		hd["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	})
	addr, stop, err := serveHTTP(h)
	if err != nil {
		return nil, err
	}
	return &bareSystem{addr: addr, stop: stop}, nil
}

func (s *bareSystem) addrs() []string               { return []string{s.addr} }
func (s *bareSystem) sample(context.Context) sample { return sample{rss: selfRSS()} }
func (s *bareSystem) settle(context.Context) error  { return nil }
func (s *bareSystem) rowsName() string              { return "nothing" }
func (s *bareSystem) rssSource() string             { return "this process: HTTP server and load generator" }
func (s *bareSystem) close() error                  { s.stop(); return nil }
func (s *bareSystem) truth(context.Context, int64) (int64, error) {
	return -1, errNoTruth
}
func (s *bareSystem) notes() []string {
	return []string{"bare-http: the same HTTP server answering 200 at once, no auth, no store: the ceiling of HTTP plus this load generator on this machine"}
}

// redactURL drops the password of a URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.Redacted()
}
