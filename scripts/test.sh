#!/usr/bin/env bash
# scripts/test.sh — THE test command of likes (the README points here; CI runs
# it through .ci/run with CI=true).
#
#   scripts/test.sh                      vet + all tests (-race)
#   scripts/test.sh -run TestX ./proxy/  vet + only what you ask for
#   FUZZ=1 scripts/test.sh               ... then every fuzz target for FUZZTIME (10s)
#
# On a fresh Debian machine (run as root, or with sudo) it installs what is
# missing with apt-get — redis-server/redis-cli, PostgreSQL, gcc for -race —
# makes sure PostgreSQL answers at 127.0.0.1:5432 with trust auth for user
# postgres and has a database "test", and then runs the tests. Where all of
# that is already in place it installs and changes nothing.
#
# Environment:
#   LIKES_TEST_PG_URL  base PostgreSQL URL for the tests; if set, the local
#                      PostgreSQL set-up is skipped and this URL is only checked.
#   FUZZ=1 / CI=true   also run short fuzzing of every Fuzz target.
#   FUZZTIME           fuzzing time per target (default 10s).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

START=$SECONDS
STEP="setup"

log() { printf 'test.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

finish() {
	local rc=$?
	if [ "$rc" -eq 0 ]; then
		printf '\ntest.sh: PASS (%s) in %ss\n' "$DONE" "$((SECONDS - START))"
	else
		printf '\ntest.sh: FAIL during %s (exit %s) after %ss\n' "$STEP" "$rc" "$((SECONDS - START))"
	fi
}
DONE=""

# as_root runs a command as root: directly when we are root, else with sudo.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

# as_postgres runs a command as the postgres OS user (peer auth on the socket).
as_postgres() {
	if [ "$(id -un)" = postgres ]; then
		"$@"
	elif [ "$(id -u)" -eq 0 ] && command -v runuser >/dev/null 2>&1; then
		runuser -u postgres -- "$@"
	else
		as_root su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
	fi
}

# ---------------------------------------------------------------------------
# Packages

MISSING=()   # Debian packages to install
APT_UPDATED=0

# need CMD PKG...: queue PKG... for installation if CMD is not on PATH.
need() {
	local cmd=$1
	shift
	command -v "$cmd" >/dev/null 2>&1 || MISSING+=("$@")
}

apt_install() {
	[ "$#" -gt 0 ] || return 0
	command -v apt-get >/dev/null 2>&1 || die "missing $*, and no apt-get to install them: install them by hand"
	if [ "$APT_UPDATED" -eq 0 ]; then
		log "apt-get update"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		APT_UPDATED=1
	fi
	log "apt-get install $*"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

required_packages() {
	need redis-server redis-server
	need redis-cli redis-tools
	# -race needs cgo, and cgo needs a C compiler.
	need gcc gcc libc6-dev
	if [ -z "${LIKES_TEST_PG_URL:-}" ]; then
		if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || ! command -v pg_ctlcluster >/dev/null 2>&1; then
			MISSING+=(postgresql)
		fi
	fi
	need psql postgresql-client
	need pg_isready postgresql-client
	# Fetching Go modules over HTTPS needs the CA bundle.
	[ -e /etc/ssl/certs/ca-certificates.crt ] || MISSING+=(ca-certificates)
}

# ---- OPTIONAL PACKAGES ------------------------------------------------------
# Tools that only some tests need (browser tests will need chromium). Add one
# "command:package" entry per tool; a missing one is installed with the rest.
OPTIONAL_TOOLS=(
	"chromium:chromium" # bench: TestReportDrawsInChromium renders bench.html headless
)
optional_packages() {
	local entry
	for entry in "${OPTIONAL_TOOLS[@]}"; do
		need "${entry%%:*}" "${entry#*:}"
	done
}
# -----------------------------------------------------------------------------

install_packages() {
	required_packages
	optional_packages
	if [ "${#MISSING[@]}" -gt 0 ]; then
		# Deduplicate, keeping order.
		local -A seen=()
		local pkgs=() p
		for p in "${MISSING[@]}"; do
			[ -n "${seen[$p]:-}" ] || { seen[$p]=1; pkgs+=("$p"); }
		done
		apt_install "${pkgs[@]}"
	fi
	local cmd
	for cmd in redis-server redis-cli psql pg_isready gcc; do
		command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after apt-get install"
	done
}

# ---------------------------------------------------------------------------
# PostgreSQL: 127.0.0.1:5432, user postgres with trust auth, database "test".

PG_HOST=127.0.0.1
PG_PORT=5432

pg_local_ok() { psql -w -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; }

pg_wait_ready() {
	local i
	for i in $(seq 1 60); do
		pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && return 0
		sleep 0.5
	done
	die "PostgreSQL did not become ready at $PG_HOST:$PG_PORT within 30s"
}

setup_postgres() {
	if [ -n "${LIKES_TEST_PG_URL:-}" ]; then
		pg_isready -q -d "$LIKES_TEST_PG_URL" || die "LIKES_TEST_PG_URL is set but that server is not ready"
		return 0
	fi
	if ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
		local ver
		ver=$(ls /usr/lib/postgresql | sort -V | tail -n1)
		[ -n "$ver" ] || die "no PostgreSQL server under /usr/lib/postgresql"
		if ! pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1 == v && $2 == "main"' | grep -q .; then
			log "creating PostgreSQL $ver cluster main"
			as_root pg_createcluster --port "$PG_PORT" "$ver" main >/dev/null
		fi
		log "starting PostgreSQL $ver/main"
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start
		pg_wait_ready
	fi
	if ! pg_local_ok; then
		# Fresh install: only peer auth on the socket and passwords over TCP.
		# Let user postgres in over loopback without a password (test machine).
		local hba
		hba=$(as_postgres psql -p "$PG_PORT" -Atqc 'SHOW hba_file') || die "cannot reach PostgreSQL as the postgres OS user to configure pg_hba.conf"
		log "allowing trust auth for user postgres on loopback in $hba"
		as_root sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
		as_postgres psql -p "$PG_PORT" -Atqc 'SELECT pg_reload_conf()' >/dev/null
		local i
		for i in $(seq 1 20); do pg_local_ok && break; sleep 0.25; done
		pg_local_ok || die "still cannot connect as postgres@$PG_HOST:$PG_PORT without a password"
	fi
	if [ "$(psql -w -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]; then
		log "creating database test"
		psql -w -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -qc 'CREATE DATABASE test'
	fi
}

# ---------------------------------------------------------------------------
# Go

setup_go() {
	if ! command -v go >/dev/null 2>&1; then
		[ -x /usr/local/go/bin/go ] || die "Go not found (neither 'go' on PATH nor /usr/local/go/bin/go): install Go $(awk '$1 == "go" {print $2}' go.mod) from https://go.dev/dl/ into /usr/local/go"
		export PATH="$PATH:/usr/local/go/bin"
	fi
	log "$(go version)"
}

# ---------------------------------------------------------------------------
# Tests

# is_pkg_arg: does this command-line argument name packages?
is_pkg_arg() {
	case $1 in
	. | .. | ./* | ../* | github.com/likes-sidecar/likes*) return 0 ;;
	*) return 1 ;;
	esac
}

run_tests() {
	local pkgs=() a
	for a in "$@"; do
		if is_pkg_arg "$a"; then pkgs+=("$a"); fi
	done
	local extra=()
	if [ "${#pkgs[@]}" -eq 0 ]; then
		pkgs=(./...)
		extra=(./...)
	fi
	STEP="go vet"
	log "go vet ${pkgs[*]}"
	go vet "${pkgs[@]}"
	DONE="vet"
	STEP="go test"
	log "go test -race -count=1 -timeout 25m $* ${extra[*]}"
	go test -race -count=1 -timeout 25m "$@" "${extra[@]}"
	DONE="$DONE, tests"
}

# fuzz_targets prints "<package dir> <FuzzName>" for every fuzz target.
fuzz_targets() {
	local f
	while IFS= read -r f; do
		grep -oE '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //' | while IFS= read -r name; do
			printf '%s %s\n' "$(dirname "$f")" "$name"
		done
	done < <(grep -rlE --include='*_test.go' --exclude-dir=testdata --exclude-dir=vendor --exclude-dir='.?*' '^func Fuzz[A-Za-z0-9_]*\(' . | sort)
}

# coordinator_race reports whether a failed fuzz run (its output in $1) is
# Go's own end-of-fuzztime race rather than a finding: the target failed
# with a bare "context deadline exceeded", no failing input was written,
# and the target's corpus ($2 $3) replays clean. The Go 1.26 fuzz
# coordinator reports a worker still busy (minimizing, or starved of CPU) at
# the -fuzztime deadline that way (go.dev/issue/75804, fixed in Go 1.27).
coordinator_race() {
	grep -q 'context deadline exceeded' "$1" || return 1
	! grep -q 'Failing input written' "$1" || return 1
	go test -count=1 -run "^${3}\$" "$2" </dev/null
}

run_fuzz() {
	local fuzztime=${FUZZTIME:-10s} dir name n=0 out rc
	STEP="fuzzing"
	out=$(mktemp)
	while read -r dir name; do
		log "fuzz $name in $dir for $fuzztime"
		STEP="fuzzing $name ($dir)"
		rc=0
		# -fuzzminimizetime bounds the minimising of each new input, which
		# otherwise may take the whole budget (default 60s).
		go test -run '^$' -fuzz "^${name}\$" -fuzztime="$fuzztime" -fuzzminimizetime=2s "$dir" </dev/null 2>&1 | tee "$out" || rc=$?
		if [ "$rc" -ne 0 ]; then
			if ! coordinator_race "$out" "$dir" "$name"; then
				rm -f "$out"
				return "$rc"
			fi
			log "fuzz $name: 'context deadline exceeded' with no failing input and a clean corpus replay: Go's fuzz coordinator race at the -fuzztime deadline (go.dev/issue/75804), not a finding"
		fi
		n=$((n + 1))
	done < <(fuzz_targets)
	rm -f "$out"
	DONE="$DONE, fuzz $n targets x $fuzztime"
}

main() {
	trap finish EXIT
	STEP="Go set-up"
	setup_go
	STEP="package installation"
	install_packages
	STEP="PostgreSQL set-up"
	setup_postgres
	run_tests "$@"
	if [ "${FUZZ:-}" = 1 ] || [ "${CI:-}" = true ]; then
		run_fuzz
	fi
	STEP="done"
}

# Run main unless sourced (sourcing lets the functions be tried one by one).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	main "$@"
fi
