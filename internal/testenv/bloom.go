package testenv

import (
	"context"
	"crypto/sha256"
	_ "embed" // the bloom module's source
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// bloomModuleSource is a stand-in for a Redis bloom module (see the file's
// comment): BF.RESERVE, BF.INSERT and BF.MEXISTS with the bloom modules'
// syntax and replies, exact rather than probabilistic.
//
//go:embed testdata/bloommodule.c
var bloomModuleSource []byte

// RedisWithBloom starts a fresh redis-server, as [Redis] does, with a bloom
// module loaded: a stand-in compiled from testdata/bloommodule.c with gcc
// (once per test process), since no bloom module is packaged for this
// machine's Redis. It answers BF.RESERVE, BF.INSERT and BF.MEXISTS as the
// bloom modules do, exactly (no false positives). moduleArgs are passed to
// the module: "maxitems", "N" makes a filter holding N items refuse new ones
// with a per-item error, as a filter that cannot grow does.
func RedisWithBloom(t testing.TB, moduleArgs ...string) *RedisServer {
	t.Helper()
	path, err := cachedBuild(bloomModuleKey, buildBloomModule)
	if err != nil {
		t.Fatalf("testenv: build the bloom module: %v", err)
	}
	args := append([]string{"--loadmodule", path}, moduleArgs...)
	return startRedis(t, newRedisServer(t, args))
}

// bloomModuleKey is the module's entry in the cache of builds.
const bloomModuleKey = "testdata/bloommodule.c"

// buildBloomModule compiles the module into a directory named after its
// source's hash and returns the shared object's path.
func buildBloomModule() (string, error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", fmt.Errorf("gcc not found (run scripts/test.sh, which installs it): %w", err)
	}
	sum := sha256.Sum256(bloomModuleSource)
	dir := filepath.Join(os.TempDir(), "likes-testenv-bin", "bloommodule-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	final := filepath.Join(dir, "bloommodule.so")
	if _, err := os.Stat(final); err == nil {
		return final, nil // built by an earlier process from the same source
	}
	src := filepath.Join(dir, fmt.Sprintf("bloommodule-%d.c", os.Getpid()))
	if err := os.WriteFile(src, bloomModuleSource, 0o644); err != nil {
		return "", err
	}
	defer os.Remove(src)
	tmp := filepath.Join(dir, fmt.Sprintf(".build-%d.so", os.Getpid()))
	defer os.Remove(tmp) // gone after the rename; cleans up on failure
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gcc, "-shared", "-fPIC", "-O2", "-Wall", "-o", tmp, src)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc: %w\n%s", err, out)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	return final, nil
}
