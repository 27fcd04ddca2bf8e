package config

import (
	"os"
	"strings"
	"testing"
)

const (
	tableStart = "<!-- config-table:start -->"
	tableEnd   = "<!-- config-table:end -->"
)

// Table renders the README's configuration table from Keys.
func table() string {
	var b strings.Builder
	b.WriteString("| key | default | flag | environment | what it does |\n|---|---|---|---|---|\n")
	for _, k := range Keys {
		def := k.Default
		if def == "" {
			def = "—"
		} else {
			def = "`" + def + "`"
		}
		flag := "—"
		if k.Flag != "" {
			flag = "`--" + k.Flag + "`"
		}
		help := strings.ReplaceAll(k.Help, "|", `\|`)
		b.WriteString("| `" + k.Name + "` | " + def + " | " + flag + " | `" + k.Env() + "` | " + help + " |\n")
	}
	return b.String()
}

// TestREADMETableMatchesKeys fails when README.md's configuration table and
// the keys the code knows differ. Run with UPDATE_README=1 to rewrite it.
func TestREADMETableMatchesKeys(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	i, j := strings.Index(s, tableStart), strings.Index(s, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %s … %s section", tableStart, tableEnd)
	}
	got := strings.TrimSpace(s[i+len(tableStart) : j])
	want := strings.TrimSpace(table())
	if got == want {
		return
	}
	if os.Getenv("UPDATE_README") == "1" {
		s = s[:i+len(tableStart)] + "\n" + want + "\n" + s[j:]
		if err := os.WriteFile("../README.md", []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
	for n := 0; n < max(len(gl), len(wl)); n++ {
		var g, w string
		if n < len(gl) {
			g = gl[n]
		}
		if n < len(wl) {
			w = wl[n]
		}
		if g != w {
			t.Fatalf("README.md configuration table differs from config.Keys at row %d:\ngot  %s\nwant %s\n(run UPDATE_README=1 go test ./config to rewrite it)", n, g, w)
		}
	}
}
