#!/usr/bin/env bash
# scripts/bench-http.sh — the HTTP ceiling measurement of issue #2:
# `likes serve` with GOMAXPROCS=1 pinned to CPU 0, wrk on CPU 1, distinct users,
# one hot post; then a bare net/http handler the same way; prints the ratio.
# Backing services run on CPU 1 beside wrk: a real redis-server, the machine's
# PostgreSQL (a fresh database likes_bench_http), and the Kafka-protocol broker
# embedded in `likes dev` (there is no Kafka here). Needs wrk (apt-get install
# wrk), taskset (util-linux), redis-server and psql.
#
#   scripts/bench-http.sh [duration=10s] [connections=64]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DUR=${1:-10s}
CONNS=${2:-64}
WARM=${WARM:-0}   # WARM=1: verify every token once before the run (warm token cache)
command -v wrk >/dev/null || { echo "bench-http: wrk missing (apt-get install wrk)"; exit 1; }
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
go build -o "$T/likes" ./cmd/likes
go build -o "$T/bare" ./internal/barehttp
SECRET=bench-secret-0123456789-0123456789-0123456789
N=${TOKENS:-600000}
"$T/likes" token --user 1 --count "$N" --secret "$SECRET" --ttl 1h > "$T/tokens.txt"

pick() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_DEV=$(pick); P_K=$(pick); P_R=$(pick); P_S=$(pick); P_B=$(pick); P_A=$(pick); P_DR=$(pick)
PG=${LIKES_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS likes_bench_http WITH (FORCE)" -c "CREATE DATABASE likes_bench_http"
DB="$PG/likes_bench_http?sslmode=disable"
taskset -c 1 redis-server --port "$P_R" --bind 127.0.0.1 --save "" --appendonly no --dir "$T" > "$T/redis.log" 2>&1 &
taskset -c 1 "$T/likes" dev --listen 127.0.0.1:$P_DEV --kafka-listen 127.0.0.1:$P_K --redis-listen 127.0.0.1:$P_DR \
	--db-url "$DB" --jwt-secret "$SECRET" --log-level warn > "$T/dev.log" 2>&1 &
for i in $(seq 100); do curl -fs "http://127.0.0.1:$P_DEV/readyz" >/dev/null && break; sleep 0.2; done
LIKES_AUTH_CACHE_SIZE=$N GOMAXPROCS=1 taskset -c 0 "$T/likes" serve --listen 127.0.0.1:$P_S --admin-listen 127.0.0.1:$P_A --redis-addrs 127.0.0.1:$P_R \
	--kafka-brokers 127.0.0.1:$P_K --db-url "$DB" --jwt-secret "$SECRET" --log-level warn > "$T/serve.log" 2>&1 &
for i in $(seq 100); do curl -fs "http://127.0.0.1:$P_S/readyz" >/dev/null && break; sleep 0.2; done
GOMAXPROCS=1 taskset -c 0 "$T/bare" -listen 127.0.0.1:$P_B &

cat > "$T/likes.lua" <<LUA
local tokens = {}
for line in io.lines("$T/tokens.txt") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/posts/1/likes", {["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1]}, "")
end
local codes = {}
response = function(status) codes[status] = (codes[status] or 0) + 1 end
done = function() for k, v in pairs(codes) do io.write(string.format("status %d: %d\n", k, v)) end end
LUA
if [ "$WARM" = 1 ]; then
	echo "== warming the token cache (GET count with each token is not enough: verify via an unlike of a never-liked post)"
	sed 's|"POST", "/posts/1/likes"|"DELETE", "/posts/2/likes"|' "$T/likes.lua" > "$T/warm.lua"
	taskset -c 1 wrk -t1 -c"$CONNS" -d"$DUR" -s "$T/warm.lua" "http://127.0.0.1:$P_S" >/dev/null
fi
echo "== likes serve (GOMAXPROCS=1, CPU 0), one hot post, distinct users"
if [ -n "${PROFILE:-}" ]; then
	curl -s "http://127.0.0.1:$P_A/debug/pprof/profile?seconds=4" > "$PROFILE" &
fi
taskset -c 1 wrk -t1 -c"$CONNS" -d"$DUR" --latency -s "$T/likes.lua" "http://127.0.0.1:$P_S" | tee "$T/likes.out"
echo "== bare net/http handler (GOMAXPROCS=1, CPU 0), same requests"
taskset -c 1 wrk -t1 -c"$CONNS" -d"$DUR" --latency -s "$T/likes.lua" "http://127.0.0.1:$P_B" | tee "$T/bare.out"
L=$(awk '/Requests\/sec/ {print $2}' "$T/likes.out"); B=$(awk '/Requests\/sec/ {print $2}' "$T/bare.out")
python3 -c "print(f'ratio likes/bare = {float($L)/float($B):.2f}  ({float($L):.0f} vs {float($B):.0f} req/s)')"
