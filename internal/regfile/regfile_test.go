//go:build unix

package regfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "alerts.jsonl")
	if err := os.WriteFile(file, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, tc := range []struct {
		name    string
		path    string
		flag    int
		wantErr error
	}{
		{"regular file", file, os.O_RDONLY, nil},
		{"new file", filepath.Join(dir, "new"), os.O_WRONLY | os.O_CREATE | NoFollow, nil},
		{"link followed", link, os.O_RDONLY, nil},
		{"link refused", link, os.O_WRONLY | os.O_APPEND | NoFollow, ErrNotRegular},
		{"dangling link refused", filepath.Join(dir, "dangling"), os.O_WRONLY | os.O_CREATE | NoFollow, ErrNotRegular},
		{"FIFO, no writer", fifo, os.O_RDONLY, ErrNotRegular},
		{"FIFO, no reader", fifo, os.O_WRONLY | os.O_APPEND | os.O_CREATE | NoFollow, ErrNotRegular},
		{"directory", dir, os.O_RDONLY, ErrNotRegular},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "dangling link refused" {
				os.Symlink(filepath.Join(dir, "nowhere"), tc.path)
			}
			done := make(chan error, 1)
			go func() {
				f, err := Open(tc.path, tc.flag, 0o600)
				if err == nil {
					f.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, tc.wantErr) && (tc.wantErr != nil || err != nil) {
					t.Fatalf("Open = %v, want %v", err, tc.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Open hung")
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nowhere")); !os.IsNotExist(err) {
		t.Error("a dangling link's target was created")
	}
}
