//go:build unix

package alert

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dialWithin dials the jsonl sink at path and writes one alert, failing
// the test if that does not return within 5 s.
func dialWithin(t *testing.T, path string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		w, err := dialJSONL(path, 1<<20, 1)(context.Background())
		if err != nil {
			done <- err
			return
		}
		a := sampleAlert()
		err = w.Write(context.Background(), &a)
		w.Close()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("opening the alerts file hung")
		return nil
	}
}

// The alerts file is not followed through a symbolic link: whoever can
// write to its directory cannot make picoseg (root) append to another file.
func TestJSONLRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "shadow")
	if err := os.WriteFile(target, []byte("root:x:0:\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "alerts.jsonl")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := dialWithin(t, path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("dial through a symbolic link: %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "root:x:0:\n" {
		t.Fatalf("the link's target was written: %q", b)
	}
	// A dangling link is not created through either.
	os.Remove(path)
	os.Symlink(filepath.Join(dir, "elsewhere"), path)
	if err := dialWithin(t, path); err == nil {
		t.Fatal("dial through a dangling link succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "elsewhere")); !os.IsNotExist(err) {
		t.Fatal("the dangling link's target was created")
	}
}

// A FIFO at the alerts path is refused at once, not opened (with no
// reader, opening it for writing would block the sink forever).
func TestJSONLRefusesFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := dialWithin(t, path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("dial of a FIFO: %v, want a refusal", err)
	}
}
