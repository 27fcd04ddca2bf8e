package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/internal/liverig"
	"github.com/likes-sidecar/likes/internal/testenv"
)

// TestBrowser drives the example app's page in headless Chromium, end to
// end: two app pods (each an app with its own `likes serve` sidecar) on real
// Redis, Kafka (kfake over TCP) and PostgreSQL, a `likes consume`, and two
// users in isolated browser contexts.
//
// Alice clicks like: the count goes up and the button says "liked"; she
// clicks again: unliked, the count goes back. Bob likes through the other
// pod: Alice's page, untouched, shows his like within a few seconds.
func TestBrowser(t *testing.T) {
	browser := chromium(t) // first: a missing Chromium fails at once
	stack := liverig.New(t, 4)
	sidecarA, sidecarB := stack.Serve(t), stack.Serve(t)
	stack.Consume(t)
	appA := startApp(t, sidecarA.API, liverig.Secret)
	appB := startApp(t, sidecarB.API, liverig.Secret)

	alice, bob := browser.newUser(t), browser.newUser(t)
	// Screenshots of both pages when the test fails, or always into
	// $LIKES_TEST_SCREENSHOTS when it is set.
	t.Cleanup(func() {
		dir := os.Getenv("LIKES_TEST_SCREENSHOTS")
		if dir == "" && !t.Failed() {
			return
		}
		if dir == "" {
			dir = os.TempDir()
		}
		for name, p := range map[string]*cdpPage{"alice": alice, "bob": bob} {
			path := filepath.Join(dir, fmt.Sprintf("likes-browser-%s-%d.png", name, time.Now().UnixNano()))
			if err := p.screenshot(path); err == nil {
				t.Logf("screenshot of %s's page: %s", name, path)
			}
		}
	})

	signIn := func(p *cdpPage, base, name string) {
		t.Helper()
		p.navigate(base + "/posts/1")
		waitFor(t, p, "the login form", func() error {
			_, err := p.text("#signin")
			return err
		})
		p.typeInto("#user", name)
		p.click("#signin")
		waitFor(t, p, "the post page", func() error {
			who, err := p.text("#who")
			if err != nil {
				return err
			}
			if who != name {
				return fmt.Errorf("signed in as %q, want %q", who, name)
			}
			return nil
		})
	}
	count := func(p *cdpPage) (int64, error) {
		s, err := p.text("#count")
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	}
	expect := func(p *cdpPage, label string, wantCount int64, wantLiked bool, within time.Duration) {
		t.Helper()
		testenv.Eventually(t, within, func() error {
			n, err := count(p)
			if err != nil {
				return err
			}
			b, err := p.text("#like")
			if err != nil {
				return err
			}
			if liked := strings.Contains(b, "liked"); n != wantCount || liked != wantLiked {
				return fmt.Errorf("%s: got count %d and button %q, want count %d and liked %v", label, n, b, wantCount, wantLiked)
			}
			return nil
		})
	}

	signIn(alice, appA.URL, "alice")
	var before int64
	waitFor(t, alice, "a count", func() (err error) { before, err = count(alice); return err })

	t.Run("a click on like counts the like and the button shows liked", func(t *testing.T) {
		alice.click("#like")
		expect(alice, "after like", before+1, true, 5*time.Second)
	})
	t.Run("a second click unlikes", func(t *testing.T) {
		alice.click("#like")
		expect(alice, "after unlike", before, false, 5*time.Second)
	})
	t.Run("another user's like through another pod shows up in the live count", func(t *testing.T) {
		signIn(bob, appB.URL, "bob")
		bob.click("#like")
		expect(bob, "bob after like", before+1, true, 5*time.Second)
		start := time.Now()
		expect(alice, "alice's page after bob's like", before+1, false, 5*time.Second)
		t.Logf("bob's like reached alice's page (other sidecar) in %v", time.Since(start).Round(10*time.Millisecond))
	})
	t.Run("a reload keeps the state", func(t *testing.T) {
		alice.navigate(appA.URL + "/posts/1")
		expect(alice, "alice after reload", before+1, false, 5*time.Second)
		bob.navigate(appB.URL + "/posts/1")
		expect(bob, "bob after reload", before+1, true, 5*time.Second)
	})
}

func waitFor(t *testing.T, p *cdpPage, what string, f func() error) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, func() error {
		if err := f(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		return nil
	})
}
