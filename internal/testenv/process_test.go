package testenv

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProcess(t *testing.T) {
	bin := Build(t, childPkg)

	t.Run("output of stdout and stderr is captured", func(t *testing.T) {
		p := StartProcess(t, exec.Command(bin, "echo", "hello", "world"))
		if err := p.WaitTimeout(10 * time.Second); err != nil {
			t.Fatalf("wait: %v", err)
		}
		if got := p.Output(); !strings.Contains(got, "hello world\n") || !strings.Contains(got, "err\n") {
			t.Errorf("got output %q, want stdout and stderr", got)
		}
		if !p.Exited() {
			t.Errorf("got Exited() false after Wait, want true")
		}
	})

	t.Run("a non-zero exit status is returned by Wait", func(t *testing.T) {
		p := StartProcess(t, exec.Command(bin, "exit", "7"))
		var exit *exec.ExitError
		if err := p.Wait(); !errors.As(err, &exit) || exit.ExitCode() != 7 {
			t.Errorf("got %v, want exit status 7", err)
		}
	})

	t.Run("a signal reaches the process", func(t *testing.T) {
		p := StartProcess(t, exec.Command(bin, "wait"))
		Eventually(t, 10*time.Second, func() error {
			if !strings.Contains(p.Output(), "ready") {
				return errors.New("child not ready")
			}
			return nil
		})
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("signal: %v", err)
		}
		var exit *exec.ExitError
		if err := p.WaitTimeout(10 * time.Second); !errors.As(err, &exit) || exit.ExitCode() != 3 {
			t.Errorf("got %v, want exit status 3", err)
		}
		if !strings.Contains(p.Output(), "terminated") {
			t.Errorf("got output %q, want it to say terminated", p.Output())
		}
		if err := p.Signal(syscall.SIGTERM); err == nil {
			t.Errorf("got nil signalling an exited process, want an error")
		}
	})

	t.Run("Kill ends a running process and WaitTimeout bounds the wait", func(t *testing.T) {
		p := StartProcess(t, exec.Command(bin, "wait"))
		if err := p.WaitTimeout(50 * time.Millisecond); err == nil {
			t.Errorf("got nil from WaitTimeout on a running process, want an error")
		}
		p.Kill()
		if !p.Exited() {
			t.Errorf("got Exited() false after Kill, want true")
		}
		p.Kill() // harmless when already dead
	})

	t.Run("a running process is killed at cleanup", func(t *testing.T) {
		var p *Process
		runFake(t, func(tb testing.TB) { p = StartProcess(tb, exec.Command(bin, "wait")) })
		if !p.Exited() {
			t.Errorf("got Exited() false after cleanup, want true")
		}
	})

	t.Run("the output is logged when the test fails, and only then", func(t *testing.T) {
		for _, fail := range []bool{false, true} {
			f := runFake(t, func(tb testing.TB) {
				p := StartProcess(tb, exec.Command(bin, "echo", "marker-output"))
				_ = p.Wait()
				if fail {
					tb.Errorf("failing")
				}
			})
			logged := strings.Contains(strings.Join(f.logs, "\n"), "marker-output")
			if logged != fail {
				t.Errorf("test failed %v: got output logged %v, want %v", fail, logged, fail)
			}
		}
	})

	t.Run("a missing binary fails the test", func(t *testing.T) {
		f := runFake(t, func(tb testing.TB) { StartProcess(tb, exec.Command("/nonexistent/binary")) })
		if len(f.fatals) != 1 {
			t.Errorf("got %d fatals, want 1", len(f.fatals))
		}
	})
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	b := &tailBuffer{max: 10}
	for _, s := range []string{"0123456", "789abcdef"} {
		if _, err := b.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := b.String(), "6789abcdef"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
