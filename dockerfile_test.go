package likes_test

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/likes-sidecar/likes/config"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
	line int
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(l)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		cur.Reset()
	}
	return out
}

// shellWords splits s like a POSIX shell would for the simple words used in
// the Dockerfile: blanks separate, single and double quotes group.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

func expand(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		name := strings.Trim(m, "${}")
		v, ok := vars[name]
		if !ok {
			t.Fatalf("the Dockerfile's build line uses $%s, which this test does not know", name)
		}
		return v
	})
}

// TestDockerfile checks the Dockerfile's shape (multi-stage, non-root,
// EXPOSE matching the listen addresses, a HEALTHCHECK running a subcommand
// that exists, known LIKES_ variables), then builds the binary with the
// Dockerfile's own `go build` line and checks that it is static: no
// PT_INTERP, no dynamic section, no shared libraries.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "Dockerfile")
	var stages [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("got %d stages, want a multi-stage build", len(stages))
	}
	final := stages[len(stages)-1]
	get := func(stage []instruction, cmd string) []instruction {
		var out []instruction
		for _, in := range stage {
			if in.cmd == cmd {
				out = append(out, in)
			}
		}
		return out
	}
	one := func(stage []instruction, cmd string) instruction {
		t.Helper()
		got := get(stage, cmd)
		if len(got) != 1 {
			t.Fatalf("final stage: got %d %s instructions, want 1", len(got), cmd)
		}
		return got[0]
	}

	// The binary is copied from the build stage and is the entry point.
	copyIn := one(final, "COPY")
	cw := shellWords(t, copyIn.args)
	if len(cw) != 3 || !strings.HasPrefix(cw[0], "--from=") {
		t.Fatalf("final COPY %q: want --from=<build stage> <src> <dst>", copyIn.args)
	}
	binPath := cw[2]
	var entry []string
	if err := json.Unmarshal([]byte(one(final, "ENTRYPOINT").args), &entry); err != nil || len(entry) != 1 || entry[0] != binPath {
		t.Fatalf("ENTRYPOINT %q: got %v (%v), want [%q] in exec form", one(final, "ENTRYPOINT").args, entry, err, binPath)
	}

	t.Run("the final image runs as a numeric non-root user", func(t *testing.T) {
		u := one(final, "USER").args
		uid, _, _ := strings.Cut(u, ":")
		if uid == "0" || uid == "root" || !regexp.MustCompile(`^[0-9]+$`).MatchString(uid) {
			t.Fatalf("got USER %q, want a numeric non-zero uid", u)
		}
	})

	env := map[string]string{}
	for _, in := range get(final, "ENV") {
		for _, w := range shellWords(t, in.args) {
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				t.Fatalf("ENV %q: want KEY=value pairs", in.args)
			}
			env[k] = v
		}
	}
	t.Run("every LIKES_ variable names a configuration key", func(t *testing.T) {
		known := map[string]bool{}
		for _, k := range config.Keys {
			known[k.Env()] = true
		}
		for k := range env {
			if strings.HasPrefix(k, "LIKES_") && !known[k] {
				t.Errorf("ENV %s: no such configuration key", k)
			}
		}
	})
	t.Run("EXPOSE lists exactly the ports of the listen addresses", func(t *testing.T) {
		var want []string
		for _, k := range []string{"LIKES_HTTP_LISTEN", "LIKES_ADMIN_LISTEN"} {
			addr, ok := env[k]
			if !ok {
				t.Fatalf("got no ENV %s, want the image to set it", k)
			}
			want = append(want, addr[strings.LastIndexByte(addr, ':')+1:])
		}
		got := strings.Fields(one(final, "EXPOSE").args)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("got EXPOSE %v, want %v", got, want)
		}
	})

	// The build line.
	var buildLine string
	var args map[string]string = map[string]string{}
	for _, st := range stages[:len(stages)-1] {
		for _, in := range st {
			if in.cmd == "ARG" {
				for _, w := range shellWords(t, in.args) {
					k, v, _ := strings.Cut(w, "=")
					args[k] = v
				}
			}
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				buildLine = in.args
			}
		}
	}
	if buildLine == "" {
		t.Fatal("no RUN ... go build in the build stages")
	}
	words := shellWords(t, buildLine)
	for len(words) > 0 && strings.HasPrefix(words[0], "--") { // RUN options: --mount=...
		words = words[1:]
	}
	vars := map[string]string{"TARGETOS": "linux", "TARGETARCH": runtime.GOARCH, "VERSION": "dockerfile-test"}
	var buildEnv []string
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		buildEnv = append(buildEnv, expand(t, words[0], vars))
		words = words[1:]
	}
	if !slices.Contains(buildEnv, "CGO_ENABLED=0") {
		t.Fatalf("build environment %v: want CGO_ENABLED=0", buildEnv)
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		t.Fatalf("build line %q: want [VAR=value ...] go build ...", buildLine)
	}
	out := filepath.Join(t.TempDir(), "likes")
	goArgs := []string{"build"}
	for i := 2; i < len(words); i++ {
		w := expand(t, words[i], vars)
		if w == "-o" && i+1 < len(words) {
			goArgs = append(goArgs, "-o", out)
			i++
			continue
		}
		goArgs = append(goArgs, w)
	}
	if !slices.Contains(goArgs, out) {
		t.Fatalf("build line %q: want -o <path>", buildLine)
	}
	goBin := "go"
	if _, err := exec.LookPath("go"); err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goBin, goArgs...)
	cmd.Env = append(os.Environ(), buildEnv...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s (env %v): %v\n%s", goBin, strings.Join(goArgs, " "), buildEnv, err, b)
	}

	t.Run("the binary is static", func(t *testing.T) {
		f, err := elf.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Fatalf("got a %v program header, want none in a static binary", p.Type)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Fatalf("got shared libraries %v, want none", libs)
		}
	})
	t.Run("the version is stamped", func(t *testing.T) {
		b, err := exec.Command(out, "version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(b), "likes dockerfile-test ") {
			t.Fatalf("got %q, %v, want likes dockerfile-test ...", b, err)
		}
	})
	t.Run("the HEALTHCHECK runs a subcommand the binary has", func(t *testing.T) {
		hc := one(final, "HEALTHCHECK").args
		i := strings.Index(hc, "CMD ")
		if i < 0 {
			t.Fatalf("HEALTHCHECK %q: want ... CMD [...]", hc)
		}
		var argv []string
		if err := json.Unmarshal([]byte(hc[i+4:]), &argv); err != nil || len(argv) < 2 || argv[0] != binPath {
			t.Fatalf("HEALTHCHECK CMD %q: got %v (%v), want [%q, <subcommand>, ...] in exec form (no shell in the image)", hc[i+4:], argv, err, binPath)
		}
		probeArgs := append(slices.Clone(argv[1:]), "--help")
		if b, err := exec.Command(out, probeArgs...).CombinedOutput(); err != nil || strings.Contains(string(b), "unknown command") {
			t.Fatalf("%s %v: got %v\n%s", out, probeArgs, err, b)
		}
	})
	t.Run("the HEALTHCHECK probes what the image's ENV listens on", func(t *testing.T) {
		// Run the probe as the container would: with the image's ENV,
		// against a listener on the admin port's loopback address.
		var cmdEnv []string
		for k, v := range env {
			cmdEnv = append(cmdEnv, k+"="+v)
		}
		b, err := runWithEnv(out, cmdEnv, "healthcheck", "--timeout", "200ms")
		want := fmt.Sprintf("http://127.0.0.1:%s/healthz", env["LIKES_ADMIN_LISTEN"][strings.LastIndexByte(env["LIKES_ADMIN_LISTEN"], ':')+1:])
		if err == nil || !strings.Contains(b, want) {
			t.Fatalf("got %q, %v, want a failed probe of %s (nothing listens there in the test)", b, err, want)
		}
	})
}

func runWithEnv(bin string, env []string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIKES_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	b, err := cmd.CombinedOutput()
	return string(b), err
}
