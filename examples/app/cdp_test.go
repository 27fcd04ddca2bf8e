package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/likes-sidecar/likes/internal/testenv"
)

// A minimal Chrome DevTools Protocol client over --remote-debugging-pipe
// (Chromium reads commands from fd 3 and writes answers to fd 4, each a
// JSON message ended by a NUL byte): no port, no WebSocket, no download.
// It speaks only the stable commands the browser test needs.

// chromiumCandidates are the names Debian and others give the browser.
var chromiumCandidates = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// chromium starts a fresh headless Chromium with its own profile directory.
// It fails (never skips) the test when no Chromium is installed.
func chromium(t *testing.T) *cdpBrowser {
	t.Helper()
	var bin string
	for _, c := range chromiumCandidates {
		if p, err := exec.LookPath(c); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Fatalf("no Chromium on PATH (tried %v): run scripts/test.sh, which installs Debian's chromium package", chromiumCandidates)
	}
	toChrome, chromeIn, err := os.Pipe() // chrome reads toChrome (fd 3)
	if err != nil {
		t.Fatal(err)
	}
	chromeOut, fromChrome, err := os.Pipe() // chrome writes fromChrome (fd 4)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--disable-default-apps", "--disable-extensions", "--mute-audio", "--no-default-browser-check",
		"--user-data-dir="+t.TempDir(), "--window-size=1000,800", "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome}
	proc := testenv.StartProcess(t, cmd)
	toChrome.Close()
	fromChrome.Close()
	b := &cdpBrowser{
		w:       chromeIn,
		pending: make(map[int64]chan cdpMessage),
		done:    make(chan struct{}),
		proc:    proc,
	}
	go b.readLoop(bufio.NewReaderSize(chromeOut, 1<<20))
	t.Cleanup(func() {
		// Close the browser politely so its helper processes exit with it;
		// testenv kills it afterwards if it is still there.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.call(ctx, "", "Browser.close", nil)
		proc.WaitTimeout(5 * time.Second)
		chromeIn.Close()
		chromeOut.Close()
	})
	// The first answer proves the browser is up.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.call(ctx, "", "Browser.getVersion", nil); err != nil {
		t.Fatalf("chromium %s did not answer: %v", bin, err)
	}
	return b
}

type cdpMessage struct {
	ID     int64           `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// cdpBrowser is one Chromium process. Safe for concurrent use.
type cdpBrowser struct {
	proc *testenv.Process

	wmu sync.Mutex
	w   io.Writer

	mu      sync.Mutex
	next    int64
	pending map[int64]chan cdpMessage
	done    chan struct{}
	readErr error
}

func (b *cdpBrowser) readLoop(r *bufio.Reader) {
	defer close(b.done)
	for {
		raw, err := r.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.readErr = err
			b.mu.Unlock()
			return
		}
		var m cdpMessage
		if err := json.Unmarshal(raw[:len(raw)-1], &m); err != nil || m.ID == 0 {
			continue // an event, or something this client does not read
		}
		b.mu.Lock()
		ch := b.pending[m.ID]
		delete(b.pending, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// call sends method with params to the browser (session "") or a page's
// session and waits for the answer.
func (b *cdpBrowser) call(ctx context.Context, session, method string, params any) (json.RawMessage, error) {
	b.mu.Lock()
	b.next++
	id := b.next
	ch := make(chan cdpMessage, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	raw, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	b.wmu.Lock()
	_, err = b.w.Write(append(raw, 0))
	b.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return nil, fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		return m.Result, nil
	case <-b.done:
		b.mu.Lock()
		defer b.mu.Unlock()
		return nil, fmt.Errorf("%s: browser connection closed: %v", method, b.readErr)
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// cdpPage is a tab in its own browser context (its own cookies: one user).
type cdpPage struct {
	t       *testing.T
	b       *cdpBrowser
	session string
}

// newUser opens a tab in a fresh, isolated browser context.
func (b *cdpBrowser) newUser(t *testing.T) *cdpPage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var bc struct {
		BrowserContextID string `json:"browserContextId"`
	}
	b.callInto(t, ctx, "Target.createBrowserContext", map[string]any{"disposeOnDetach": true}, &bc)
	var tg struct {
		TargetID string `json:"targetId"`
	}
	b.callInto(t, ctx, "Target.createTarget", map[string]any{"url": "about:blank", "browserContextId": bc.BrowserContextID}, &tg)
	var at struct {
		SessionID string `json:"sessionId"`
	}
	b.callInto(t, ctx, "Target.attachToTarget", map[string]any{"targetId": tg.TargetID, "flatten": true}, &at)
	return &cdpPage{t: t, b: b, session: at.SessionID}
}

// callInto is a browser-level call whose answer is decoded into out.
func (b *cdpBrowser) callInto(t *testing.T, ctx context.Context, method string, params, out any) {
	t.Helper()
	raw, err := b.call(ctx, "", method, params)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s: decode %s: %v", method, raw, err)
	}
}

func (p *cdpPage) call(method string, params any) json.RawMessage {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw, err := p.b.call(ctx, p.session, method, params)
	if err != nil {
		p.t.Fatal(err)
	}
	return raw
}

// eval runs a JavaScript expression in the page and returns its value
// (promises are awaited) decoded into a Go value.
func (p *cdpPage) eval(expr string) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw, err := p.b.call(ctx, p.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true})
	if err != nil {
		return nil, err
	}
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception *struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	if e := r.ExceptionDetails; e != nil {
		msg := e.Text
		if e.Exception != nil {
			msg += " " + e.Exception.Description
		}
		return nil, errors.New("javascript: " + msg)
	}
	return r.Result.Value, nil
}

// navigate loads url and waits until the document has loaded.
func (p *cdpPage) navigate(url string) {
	p.t.Helper()
	p.call("Page.navigate", map[string]any{"url": url})
	testenv.Eventually(p.t, 15*time.Second, func() error {
		v, err := p.eval(`document.readyState === "complete" && location.href`)
		if err != nil {
			return err
		}
		if s, ok := v.(string); !ok || s == "about:blank" {
			return fmt.Errorf("still loading (%v)", v)
		}
		return nil
	})
}

// click clicks the element matched by selector with real mouse events at
// its centre, as a person would.
func (p *cdpPage) click(selector string) {
	p.t.Helper()
	v, err := p.eval(fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		if (!el) return null;
		el.scrollIntoView({block: "center"});
		const r = el.getBoundingClientRect();
		return [r.left + r.width / 2, r.top + r.height / 2];
	})()`, selector))
	if err != nil {
		p.t.Fatal(err)
	}
	xy, ok := v.([]any)
	if !ok || len(xy) != 2 {
		p.t.Fatalf("click %s: no such element on the page", selector)
	}
	x, y := xy[0].(float64), xy[1].(float64)
	p.call("Input.dispatchMouseEvent", map[string]any{"type": "mouseMoved", "x": x, "y": y})
	p.call("Input.dispatchMouseEvent", map[string]any{"type": "mousePressed", "x": x, "y": y, "button": "left", "clickCount": 1})
	p.call("Input.dispatchMouseEvent", map[string]any{"type": "mouseReleased", "x": x, "y": y, "button": "left", "clickCount": 1})
}

// typeInto focuses the element and types text with key events.
func (p *cdpPage) typeInto(selector, text string) {
	p.t.Helper()
	p.click(selector)
	p.call("Input.insertText", map[string]any{"text": text})
}

// text returns the textContent of the element matched by selector.
func (p *cdpPage) text(selector string) (string, error) {
	v, err := p.eval(fmt.Sprintf(`(() => { const el = document.querySelector(%q); return el ? el.textContent : null; })()`, selector))
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("no element %s", selector)
	}
	return s, nil
}

// screenshot saves a PNG of the page (for a failing test's artefacts).
func (p *cdpPage) screenshot(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := p.b.call(ctx, p.session, "Page.captureScreenshot", map[string]any{"format": "png"})
	if err != nil {
		return err
	}
	var r struct {
		Data []byte `json:"data"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	return os.WriteFile(path, r.Data, 0o644)
}
