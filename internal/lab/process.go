package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
)

// maxOutput bounds what a Process keeps of its output, so a chatty server
// cannot grow the test binary without limit.
const maxOutput = 1 << 20

// Process is a program started in a host's namespace by [Host.Start].
type Process struct {
	// Host is where the process runs.
	Host *Host

	cmd     *exec.Cmd
	cancel  context.CancelFunc
	out     *cappedBuffer
	done    chan struct{}
	err     error // valid once done is closed
	stopped atomic.Bool
}

var _ stopper = (*Process)(nil)

// PID returns the process ID (of the program itself: `ip netns exec` execs it).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its error, which carries the
// tail of its output.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Output returns the combined stdout and stderr so far (the first MiB).
func (p *Process) Output() string { return p.out.String() }

// Stop kills the process and its process group and waits for it. It returns
// nil when Stop ended the process, and the process's own error when it had
// already exited by itself. Stop may be called more than once.
func (p *Process) Stop() error {
	select {
	case <-p.done:
		if p.stopped.Load() {
			return nil
		}
		return p.err
	default:
	}
	p.stopped.Store(true)
	p.cancel()
	<-p.done
	return nil
}

func (p *Process) stop() error { return p.Stop() }

// wait reaps the process and records its error; it runs in its own goroutine.
func (p *Process) wait() {
	err := p.cmd.Wait()
	if err != nil {
		err = fmt.Errorf("lab: %s: %s: %w%s", p.Host.Name, strings.Join(p.cmd.Args[4:], " "), err, tail(p.out.String()))
	}
	p.err = err
	p.cancel()
	close(p.done)
	p.Host.lab.untrack(p)
}

// tail formats the end of a program's output for an error message.
func tail(out string) string {
	out = strings.TrimSpace(out)
	if out == "" {
		return ""
	}
	const max = 2000
	if len(out) > max {
		out = "..." + out[len(out)-max:]
	}
	return "\n" + out
}

// cappedBuffer is a goroutine-safe buffer that keeps the first maxOutput bytes.
type cappedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

var _ io.Writer = (*cappedBuffer)(nil)

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxOutput - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
