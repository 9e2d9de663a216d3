package alert

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"strconv"

	"github.com/picoseg/picoseg/internal/regfile"
)

// JSON-lines sink defaults.
const (
	DefaultMaxSize = 10 << 20
	DefaultKeep    = 5
)

// jsonlWriter appends one JSON object a line to a file and rotates it by
// size: path, path.1 (the newest rotated), ... path.keep (the oldest).
// Size-based rotation, not time-based: a gateway's flash is small and an
// attack decides how fast alerts come, not the calendar.
type jsonlWriter struct {
	path    string
	maxSize int64
	keep    int
	f       *os.File
	size    int64
	line    []byte
}

var _ Writer = (*jsonlWriter)(nil)

func dialJSONL(path string, maxSize int64, keep int) Dialer {
	return func(context.Context) (Writer, error) {
		w := &jsonlWriter{path: path, maxSize: maxSize, keep: keep}
		if err := w.open(); err != nil {
			return nil, err
		}
		return w, nil
	}
}

func (w *jsonlWriter) open() error {
	// 0640: alerts name devices and addresses of the home network.
	// picoseg writes as root into a directory others may be able to
	// write to: a symbolic link there must not send alerts into another
	// file (appending to /etc/shadow), and a FIFO must not block the
	// sink on open. Only a regular file, not through a link, is written.
	f, err := regfile.Open(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|regfile.NoFollow, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, fi.Size()
	return nil
}

func (w *jsonlWriter) Write(_ context.Context, a *Alert) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	w.line = append(append(w.line[:0], b...), '\n')
	if w.size > 0 && w.size+int64(len(w.line)) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.line)
	w.size += int64(n)
	return err
}

// rotate shifts path.i to path.i+1, dropping the oldest, and starts an
// empty path.
func (w *jsonlWriter) rotate() error {
	if err := w.f.Close(); err != nil {
		return err
	}
	w.f = nil
	for i := w.keep - 1; i >= 1; i-- {
		err := os.Rename(w.path+"."+strconv.Itoa(i), w.path+"."+strconv.Itoa(i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	var err error
	if w.keep > 0 {
		err = os.Rename(w.path, w.path+".1")
	} else {
		err = os.Remove(w.path)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return w.open()
}

func (w *jsonlWriter) Close() error {
	if w.f == nil {
		return nil
	}
	return w.f.Close()
}
