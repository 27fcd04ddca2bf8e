// Package config loads the one configuration of every `likes` command:
// flags > environment (LIKES_ prefix, dots become underscores) > file
// (--config likes.yaml) > defaults, through viper.
//
// Every key is declared once, in [Keys], with its kind, default, flag and
// help. Loading is strict: a key in the file or a LIKES_ variable that no
// command knows, or a value that does not parse, is an error naming the key,
// never a silent default. Components receive typed values through [Values];
// only the CLI layer reads flags, environment and files.
package config

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Values is a loaded configuration. Safe for concurrent reads.
type Values struct {
	vals     map[string]any
	explicit map[string]bool // set by a flag, the environment or the file
}

var byName = func() map[string]Key {
	m := make(map[string]Key, len(Keys))
	for _, k := range Keys {
		m[k.Name] = k
	}
	return m
}()

// Lookup returns the key named name.
func Lookup(name string) (Key, bool) {
	k, ok := byName[name]
	return k, ok
}

// AddFlags registers the flags of the named keys (those with a Flag) on fs.
func AddFlags(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		k, ok := byName[n]
		if !ok {
			panic("config: unknown key " + n) // programming error, caught by tests
		}
		if k.Flag == "" || fs.Lookup(k.Flag) != nil {
			continue
		}
		help := k.Help + " (" + k.Name + ", " + k.Env() + ")"
		if k.Kind == Bool {
			def, _ := strconv.ParseBool(k.Default)
			fs.Bool(k.Flag, def, help)
		} else {
			fs.String(k.Flag, k.Default, help)
		}
	}
}

// Load reads the configuration: flags in fs that were set, then LIKES_
// environment variables, then file (if not empty), then defaults.
func Load(fs *pflag.FlagSet, file string) (*Values, error) {
	v := viper.New()
	// LIKES_X= is a value (the empty string) that beats the file, not an
	// absent variable.
	v.AllowEmptyEnv(true)
	for _, k := range Keys {
		v.SetDefault(k.Name, k.Default)
		if err := v.BindEnv(k.Name, k.Env()); err != nil {
			return nil, fmt.Errorf("%s: %w", k.Name, err)
		}
		if k.Flag != "" && fs != nil {
			if f := fs.Lookup(k.Flag); f != nil {
				if err := v.BindPFlag(k.Name, f); err != nil {
					return nil, fmt.Errorf("%s: %w", k.Name, err)
				}
			}
		}
	}
	if err := checkEnv(os.Environ()); err != nil {
		return nil, err
	}
	var fv *viper.Viper
	if file != "" {
		fv = viper.New()
		fv.SetConfigFile(file)
		if err := fv.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config file %s: %w", file, err)
		}
		for _, name := range fv.AllKeys() {
			if _, ok := byName[name]; !ok {
				return nil, fmt.Errorf("config file %s: unknown key %q", file, name)
			}
		}
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config file %s: %w", file, err)
		}
	}
	out := &Values{vals: make(map[string]any, len(Keys)), explicit: make(map[string]bool)}
	for _, k := range Keys {
		val, err := parse(k, v.Get(k.Name))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k.Name, err)
		}
		out.vals[k.Name] = val
		if explicit(k, fs, fv) {
			out.explicit[k.Name] = true
		}
	}
	return out, nil
}

// explicit reports whether k was given by a flag of fs that was set, by its
// environment variable (even empty) or by the file read into fv (nil: none).
func explicit(k Key, fs *pflag.FlagSet, fv *viper.Viper) bool {
	if k.Flag != "" && fs != nil {
		if f := fs.Lookup(k.Flag); f != nil && f.Changed {
			return true
		}
	}
	if _, ok := os.LookupEnv(k.Env()); ok {
		return true
	}
	return fv != nil && fv.InConfig(k.Name)
}

// checkEnv rejects LIKES_ variables that name no key. LIKES_TEST_ variables
// belong to the test suite and are ignored.
func checkEnv(env []string) error {
	known := make(map[string]bool, len(Keys))
	for _, k := range Keys {
		known[k.Env()] = true
	}
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "LIKES_") || strings.HasPrefix(name, "LIKES_TEST_") || known[name] {
			continue
		}
		return fmt.Errorf("environment variable %s: no such configuration key", name)
	}
	return nil
}

func parse(k Key, raw any) (any, error) {
	switch k.Kind {
	case String:
		switch x := raw.(type) {
		case string:
			return x, nil
		case int, int64, float64, bool:
			return fmt.Sprint(x), nil
		}
	case Int:
		switch x := raw.(type) {
		case int:
			return x, nil
		case int64:
			return int(x), nil
		case float64:
			// JSON files decode every number as float64.
			if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
				return nil, fmt.Errorf("want an integer, got %v", x)
			}
			return int(x), nil
		case string:
			n, err := strconv.Atoi(strings.TrimSpace(x))
			if err != nil {
				return nil, fmt.Errorf("want an integer, got %q", x)
			}
			return n, nil
		}
	case Bool:
		switch x := raw.(type) {
		case bool:
			return x, nil
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(x))
			if err != nil {
				return nil, fmt.Errorf("want true or false, got %q", x)
			}
			return b, nil
		}
	case Duration:
		switch x := raw.(type) {
		case string:
			d, err := time.ParseDuration(strings.TrimSpace(x))
			if err != nil {
				return nil, fmt.Errorf("want a duration with a unit such as 100ms or 2s, got %q", x)
			}
			if d < 0 {
				return nil, fmt.Errorf("must not be negative, got %q", x)
			}
			return d, nil
		case time.Duration:
			return x, nil
		}
		return nil, fmt.Errorf("want a duration with a unit such as 100ms or 2s, got %v", raw)
	case List:
		switch x := raw.(type) {
		case string:
			return splitList(x), nil
		case []string:
			return x, nil
		case []any:
			out := make([]string, 0, len(x))
			for _, e := range x {
				out = append(out, fmt.Sprint(e))
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("unexpected value %v (%T)", raw, raw)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (v *Values) get(name string) any {
	x, ok := v.vals[name]
	if !ok {
		panic("config: unknown key " + name) // programming error, caught by tests
	}
	return x
}

// String returns a String key's value.
func (v *Values) String(name string) string { return v.get(name).(string) }

// Int returns an Int key's value.
func (v *Values) Int(name string) int { return v.get(name).(int) }

// Bool returns a Bool key's value.
func (v *Values) Bool(name string) bool { return v.get(name).(bool) }

// Duration returns a Duration key's value.
func (v *Values) Duration(name string) time.Duration { return v.get(name).(time.Duration) }

// List returns a List key's value.
func (v *Values) List(name string) []string { return v.get(name).([]string) }

// Explicit reports whether the key was given by a flag, the environment or
// the configuration file, rather than left at its default (`likes dev` uses
// other defaults for some keys).
func (v *Values) Explicit(name string) bool { v.get(name); return v.explicit[name] }

// Set overrides a value (used by `likes dev` to point at its embedded servers).
func (v *Values) Set(name string, val any) { v.get(name); v.vals[name] = val }

// Redacted returns "key = value" lines, sorted, with secrets replaced.
func (v *Values) Redacted() []string {
	names := make([]string, 0, len(v.vals))
	for n := range v.vals {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]string, 0, len(names))
	for _, n := range names {
		val := v.vals[n]
		s := fmt.Sprint(val)
		if l, ok := val.([]string); ok {
			s = strings.Join(l, ",")
		}
		if byName[n].Secret && s != "" {
			s = "<redacted>"
		}
		out = append(out, n+" = "+s)
	}
	return out
}
