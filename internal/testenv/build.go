package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildTimeout bounds one `go build`; a cold cache with -race is slow.
const buildTimeout = 10 * time.Minute

// builds caches [Build] results for the life of the test process, keyed by
// package path. It is the package's only global state: a map guarded by a
// mutex, each entry built once (sync.Once) while other packages build in
// parallel. A failed build is cached too, so every test that needs it fails
// at once with the same compiler output.
var builds = struct {
	mu sync.Mutex
	m  map[string]*buildEntry
}{m: make(map[string]*buildEntry)}

type buildEntry struct {
	once sync.Once
	path string
	err  error
}

// Build compiles the main package pkg (a path relative to the module root,
// such as "./cmd/likes", or an import path) with `go build` and returns the
// binary's path. It builds each package once per test process; later calls
// return the cached path at once. When the test binary runs with -race, the
// child binary is built with -race too, so integration tests catch races in
// the processes they start.
//
// The binary goes to a directory under os.TempDir() named after the module
// root, and is renamed into place atomically, so parallel test processes
// (one per package under `go test ./...`) never see a half-written file and
// nothing accumulates across runs. The module root is found with
// `go env GOMOD` from the test's working directory. Build fails the test if
// the go command is missing or the build fails (with the compiler output).
// Safe for concurrent use.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	path, err := cachedBuild(pkg, func() (string, error) { return build(pkg) })
	if err != nil {
		t.Fatalf("testenv: build %s: %v", pkg, err)
	}
	return path
}

// cachedBuild runs build once per test process for key and returns its
// result, the same to every caller.
func cachedBuild(key string, build func() (string, error)) (string, error) {
	builds.mu.Lock()
	e, ok := builds.m[key]
	if !ok {
		e = &buildEntry{}
		builds.m[key] = e
	}
	builds.mu.Unlock()
	e.once.Do(func() { e.path, e.err = build() })
	return e.path, e.err
}

func build(pkg string) (string, error) {
	goBin, err := goCommand()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	root, err := moduleRoot(ctx, goBin)
	if err != nil {
		return "", err
	}
	var flags []string
	if raceEnabled {
		flags = append(flags, "-race")
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "likes-testenv-bin", hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// One directory per (package, flags), so the binary keeps the package's
	// name (which is what shows in process listings and logs).
	key := sha256.Sum256([]byte(pkg + "\x00" + strings.Join(flags, " ")))
	dir = filepath.Join(dir, hex.EncodeToString(key[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	final := filepath.Join(dir, filepath.Base(pkg))
	tmp, err := os.CreateTemp(dir, ".build-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // gone after the rename; cleans up on failure

	args := append([]string{"build", "-o", tmp.Name()}, flags...)
	args = append(args, pkg)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), root, err, out)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", err
	}
	return final, nil
}

// goCommand finds the go command: on PATH, else in /usr/local/go/bin.
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	const fallback = "/usr/local/go/bin/go"
	if _, err := os.Stat(fallback); err == nil {
		return fallback, nil
	}
	return "", errors.New("go command not found on PATH nor at " + fallback + ": install Go (see scripts/test.sh)")
}

// moduleRoot returns the directory of the go.mod governing the working
// directory.
func moduleRoot(ctx context.Context, goBin string) (string, error) {
	out, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
}
