package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// record is what a lab leaves in StateDir so that Cleanup can remove it if
// its owner dies without closing it.
type record struct {
	ID string `json:"id"`
	// PID and PIDStart identify the owner process; the start time (in clock
	// ticks since boot) tells a dead owner from a new process reusing its PID.
	PID        int       `json:"pid"`
	PIDStart   uint64    `json:"pid_start"`
	Created    time.Time `json:"created"`
	Namespaces []string  `json:"namespaces"`
}

func recordPath(id string) string { return filepath.Join(StateDir, id) }

// writeRecord creates the record of a lab. It fails with fs.ErrExist when a
// record with the same ID exists, so two labs never share an ID. The record
// appears whole or not at all (written aside, then linked into place), so a
// concurrent Cleanup never reads half of one.
func writeRecord(r record) error {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return fmt.Errorf("lab: state directory: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(StateDir, ".new-"+r.ID+"-")
	if err != nil {
		return fmt.Errorf("lab: record: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(data, '\n'))
	if err = errors.Join(err, tmp.Chmod(0o644), tmp.Close()); err != nil {
		return fmt.Errorf("lab: record: %w", err)
	}
	if err := os.Link(tmp.Name(), recordPath(r.ID)); err != nil {
		return fmt.Errorf("lab: record: %w", err)
	}
	return nil
}

// readRecords returns every record in StateDir. Unreadable records are
// reported in the error but do not stop the others from being returned.
func readRecords() ([]record, error) {
	entries, err := os.ReadDir(StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	var recs []record
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue // not a record, or one being written
		}
		data, err := os.ReadFile(filepath.Join(StateDir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // its lab closed meanwhile
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("lab: %w", err))
			continue
		}
		var r record
		if err := json.Unmarshal(data, &r); err != nil || r.ID != e.Name() {
			errs = append(errs, fmt.Errorf("lab: %s: not a lab record (%v)", filepath.Join(StateDir, e.Name()), err))
			continue
		}
		recs = append(recs, r)
	}
	return recs, errors.Join(errs...)
}

// removeRecord deletes the record of lab id; a missing record is not an error.
func removeRecord(id string) error {
	err := os.Remove(recordPath(id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}
