package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

const childPkg = "./internal/testenv/testdata/child"

func TestBuild(t *testing.T) {
	t.Run("a main package is built into a runnable binary", func(t *testing.T) {
		bin := Build(t, childPkg)
		out, err := exec.Command(bin, "echo", "hello").Output()
		if err != nil {
			t.Fatalf("run %s: %v", bin, err)
		}
		if got := strings.TrimSpace(string(out)); got != "hello" {
			t.Errorf("got output %q, want %q", got, "hello")
		}
	})

	t.Run("a second call returns the cached binary without rebuilding", func(t *testing.T) {
		bin := Build(t, childPkg)
		before, err := os.Stat(bin)
		if err != nil {
			t.Fatal(err)
		}
		again := Build(t, childPkg)
		if again != bin {
			t.Errorf("got path %s, want %s", again, bin)
		}
		after, err := os.Stat(again)
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
			t.Errorf("got a rebuilt binary, want the cached one")
		}
	})

	t.Run("a package that does not build fails the test with the compiler output", func(t *testing.T) {
		f := runFake(t, func(tb testing.TB) { Build(tb, "./internal/testenv/testdata/nosuchpkg") })
		if len(f.fatals) != 1 || !strings.Contains(f.fatals[0], "nosuchpkg") {
			t.Errorf("got fatals %q, want one naming the package", f.fatals)
		}
	})
}
