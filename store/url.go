package store

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Dialect names returned by [DB.Dialect].
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

// target is a parsed database URL.
type target struct {
	dialect string
	// conn is what the driver opens: the URL itself for PostgreSQL, the file
	// path for SQLite.
	conn string
	// where names the database in messages without any secret:
	// "postgres://user@host:port/db" or the SQLite path.
	where string
	// secrets are strings that must never appear in a message (the
	// password from the user info or from a password= query parameter).
	secrets []string
}

// parseURL recognises the dialect of raw and checks its shape. Its errors
// wrap [ErrBadURL] and never quote raw (it may hold a password).
func parseURL(raw string) (target, error) {
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok || scheme == "" {
		return target{}, fmt.Errorf("%w: no scheme (want postgres://…, postgresql://…, sqlite://path or sqlite:path)", ErrBadURL)
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return parsePostgresURL(raw)
	case "sqlite":
		path := strings.TrimPrefix(rest, "//")
		switch {
		case path == "":
			return target{}, fmt.Errorf("%w: sqlite URL has no path", ErrBadURL)
		case strings.ContainsAny(path, "?#\x00"):
			// The driver would read anything after '?' as its own
			// parameters; this package sets those itself.
			return target{}, fmt.Errorf("%w: sqlite path must not contain '?', '#' or NUL", ErrBadURL)
		}
		return target{dialect: DialectSQLite, conn: path, where: path}, nil
	}
	if !validScheme(scheme) {
		return target{}, fmt.Errorf("%w: no scheme (want postgres://…, postgresql://…, sqlite://path or sqlite:path)", ErrBadURL)
	}
	return target{}, fmt.Errorf("%w: scheme %q (want postgres://…, postgresql://…, sqlite://path or sqlite:path)", ErrBadURL, scheme)
}

func parsePostgresURL(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included: keep only
		// the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return target{}, fmt.Errorf("%w: postgres URL: %s", ErrBadURL, scrubString(err.Error(), guessSecrets(raw)))
	}
	t := target{dialect: DialectPostgres, conn: raw}
	if p, ok := u.User.Password(); ok && p != "" {
		t.secrets = append(t.secrets, p)
	}
	if p := u.Query().Get("password"); p != "" {
		t.secrets = append(t.secrets, p)
	}
	var b strings.Builder
	b.WriteString("postgres://")
	if name := u.User.Username(); name != "" {
		b.WriteString(url.PathEscape(name))
		b.WriteByte('@')
	}
	b.WriteString(u.Host)
	b.WriteString(u.EscapedPath())
	t.where = scrubString(b.String(), t.secrets)
	return t, nil
}

// validScheme reports whether s has the RFC 3986 shape of a scheme, so that a
// Windows-style path or other text is not called a scheme in a message.
func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return len(s) > 0 && len(s) <= 32
}

// guessSecrets returns the password part of a URL that net/url could not
// parse: whatever lies between the first ':' after "//" and the last '@'.
func guessSecrets(raw string) []string {
	_, rest, ok := strings.Cut(raw, "//")
	if !ok {
		return nil
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return nil
	}
	_, pw, ok := strings.Cut(rest[:at], ":")
	if !ok || pw == "" {
		return nil
	}
	return []string{pw}
}

// scrubString replaces every occurrence of each secret (raw or URL-decoded)
// in s by "xxxxx".
func scrubString(s string, secrets []string) string {
	for _, sec := range secrets {
		forms := []string{sec}
		if d, err := url.PathUnescape(sec); err == nil && d != sec {
			forms = append(forms, d)
		}
		if e := url.QueryEscape(sec); e != sec {
			forms = append(forms, e)
		}
		for _, f := range forms {
			if f != "" {
				s = strings.ReplaceAll(s, f, "xxxxx")
			}
		}
	}
	return s
}

// scrubbedError is an error whose message has had secrets removed; it still
// unwraps to the original so errors.Is and errors.As work.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub returns err with secrets removed from its message, or err itself
// when there is nothing to remove.
func scrub(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	if clean := scrubString(msg, secrets); clean != msg {
		return &scrubbedError{msg: clean, err: err}
	}
	return err
}
