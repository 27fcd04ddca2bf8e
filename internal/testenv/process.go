package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// maxLoggedOutput bounds how much of a process's output is kept and written
// to the test log when the test fails (the tail is kept).
const maxLoggedOutput = 64 << 10

// Process is a child process started by [StartProcess]. Its stdout and
// stderr are captured together; when the test fails, the output is written to
// the test log at cleanup, and at cleanup a still-running process is killed.
//
// All methods are safe for concurrent use.
type Process struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // exit error; written before done is closed
}

// StartProcess starts cmd (built by the caller with its path, args, env and
// dir; cmd.Stdout and cmd.Stderr must be nil) and returns at once, without
// waiting for the process to be ready: poll for readiness with [Eventually].
// It fails the test if the process cannot be started. A still-running
// process is killed at cleanup; if the test failed, its output is logged.
func StartProcess(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p, err := startProcess(cmd, nil)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("testenv: output of %s (pid %d, %s):\n%s", p.name, p.Pid(), p.exitStatus(), p.Output())
		}
	})
	return p
}

// startProcess starts cmd with its output going to out (a new buffer if
// nil; a restarted server shares one buffer across its processes).
func startProcess(cmd *exec.Cmd, out *tailBuffer) (*Process, error) {
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("start process: cmd.Stdout and cmd.Stderr must be nil, the output is captured")
	}
	p := &Process{
		name: filepath.Base(cmd.Path),
		cmd:  cmd,
		out:  out,
		done: make(chan struct{}),
	}
	if p.out == nil {
		p.out = newTailBuffer()
	}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	// A grandchild that inherits the output pipe must not block Wait forever.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the operating-system process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process. It returns an error if the process has
// already exited.
func (p *Process) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return fmt.Errorf("signal %s pid %d: %w", p.name, p.Pid(), os.ErrProcessDone)
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s pid %d: %w", p.name, p.Pid(), err)
	}
	return nil
}

// Kill sends SIGKILL (if the process is still running) and waits until it
// has exited. Calling it again, or after the process exited, does nothing.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Wait blocks until the process exits and returns its exit error (nil for
// exit status 0; an *exec.ExitError otherwise).
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// WaitTimeout is [Process.Wait] with a bound: it returns an error if the
// process is still running after d (and leaves it running).
func (p *Process) WaitTimeout(d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.err
	case <-timer.C:
		return fmt.Errorf("%s pid %d still running after %v", p.name, p.Pid(), d)
	}
}

// Done returns a channel that is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns the captured stdout and stderr so far (the last 64 KiB).
func (p *Process) Output() string { return p.out.String() }

func (p *Process) exitStatus() string {
	select {
	case <-p.done:
		if p.err == nil {
			return "exited 0"
		}
		return p.err.Error()
	default:
		return "running"
	}
}

// tailBuffer is an io.Writer that keeps the last max bytes written. Safe for
// concurrent use (exec copies stdout and stderr from two goroutines).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func newTailBuffer() *tailBuffer { return &tailBuffer{max: maxLoggedOutput} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
