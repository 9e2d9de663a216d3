package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/picoseg/picoseg/internal/regfile"
)

// stateVersion is the state file's format version.
const stateVersion = 1

// maxStateSize bounds how much of a state file New reads. DefaultMaxDevices
// devices take well under a megabyte; a larger file is not one Save wrote.
const maxStateSize = 32 << 20

// stateFile is the state file's layout.
type stateFile struct {
	Version int       `json:"version"`
	Devices []Device  `json:"devices"`
	Saved   time.Time `json:"saved"`
}

// CorruptStateError reports a state file that could not be parsed. New
// returns it together with an empty, working inventory.
type CorruptStateError struct {
	// Path is the state file, MovedTo where it was moved ("" if moving it
	// failed too).
	Path    string
	MovedTo string
	Err     error
}

var _ error = (*CorruptStateError)(nil)

// Error says which file and why, and where it was kept.
func (e *CorruptStateError) Error() string {
	msg := fmt.Sprintf("inventory: state file %s is corrupt, starting with an empty inventory: %v", e.Path, e.Err)
	if e.MovedTo != "" {
		msg += " (kept as " + e.MovedTo + ")"
	}
	return msg
}

// Unwrap returns the parse error.
func (e *CorruptStateError) Unwrap() error { return e.Err }

// errCorrupt marks load errors that come from the file's content.
var errCorrupt = errors.New("corrupt")

type loadedDevice struct {
	e    *entry
	last time.Time
}

// loadState reads and validates the whole state file; a missing file is an
// empty inventory.
func loadState(path string) ([]loadedDevice, error) {
	// A FIFO or device at the state path must not hang the start.
	f, err := regfile.Open(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("inventory: read %s: %w", path, err)
	}
	if len(data) > maxStateSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", errCorrupt, maxStateSize)
	}
	var st stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", errCorrupt)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errCorrupt, st.Version, stateVersion)
	}
	out := make([]loadedDevice, 0, len(st.Devices))
	macs := map[[6]byte]bool{}
	addrs := map[netip.Addr]bool{}
	for i, d := range st.Devices {
		e, err := entryFromDevice(d)
		if err != nil {
			return nil, fmt.Errorf("%w: device %d: %v", errCorrupt, i, err)
		}
		if e.hasMAC {
			if macs[e.mac] {
				return nil, fmt.Errorf("%w: device %d: MAC %s listed twice", errCorrupt, i, d.MAC)
			}
			macs[e.mac] = true
		}
		for _, a := range e.addrs {
			if addrs[a] {
				return nil, fmt.Errorf("%w: device %d: address %s listed twice", errCorrupt, i, a)
			}
			addrs[a] = true
		}
		out = append(out, loadedDevice{e: e, last: e.last})
	}
	return out, nil
}

func entryFromDevice(d Device) (*entry, error) {
	e := &entry{
		name:     d.Name,
		zone:     d.Zone,
		groups:   d.Groups,
		hostname: d.Hostname,
		mudURL:   d.MUDURL,
		first:    d.FirstSeen,
		last:     d.LastSeen,
		up:       d.BytesUp,
		down:     d.BytesDown,
		flows:    d.Flows,
	}
	if d.MUDURL != "" && !ValidMUDURL(d.MUDURL) {
		return nil, fmt.Errorf("bad MUD URL %q", d.MUDURL)
	}
	if d.MAC != "" {
		hw, err := net.ParseMAC(d.MAC)
		if err != nil || len(hw) != 6 || !usableMAC([6]byte(hw)) {
			return nil, fmt.Errorf("bad MAC %q", d.MAC)
		}
		e.mac, e.hasMAC = [6]byte(hw), true
	}
	if len(d.Addrs) > MaxAddrs {
		return nil, fmt.Errorf("%d addresses, at most %d", len(d.Addrs), MaxAddrs)
	}
	for _, s := range d.Addrs {
		a, err := netip.ParseAddr(s)
		if err != nil || usableAddr(a) != a {
			return nil, fmt.Errorf("bad address %q", s)
		}
		e.addrs = append(e.addrs, a)
	}
	if !e.hasMAC && len(e.addrs) != 1 {
		return nil, errors.New("a device without a MAC must have exactly one address")
	}
	return e, nil
}

// restore adds a device loaded from the state file.
func (inv *Inventory) restore(d loadedDevice) {
	e := d.e
	addrs := e.addrs
	e.addrs = nil
	inv.insert(e)
	for _, a := range addrs {
		inv.addAddr(e, a)
	}
}

// corruptOrFail turns a load error into the documented result.
func corruptOrFail(inv *Inventory, err error) (*Inventory, error) {
	if !errors.Is(err, errCorrupt) {
		return nil, err
	}
	path := inv.opts.StatePath
	ce := &CorruptStateError{Path: path, Err: err}
	// Keep the evidence: the next Save would overwrite it.
	if os.Rename(path, path+".corrupt") == nil {
		ce.MovedTo = path + ".corrupt"
	}
	return inv, ce
}

// Save writes the inventory to the state file atomically (see the package
// documentation). It does nothing when there is no state file.
func (inv *Inventory) Save() error {
	path := inv.opts.StatePath
	if path == "" {
		return nil
	}
	inv.saveMu.Lock()
	defer inv.saveMu.Unlock()
	inv.mu.Lock()
	devs := inv.snapshot(nil)
	inv.mu.Unlock()
	data, err := json.MarshalIndent(stateFile{Version: stateVersion, Devices: devs, Saved: inv.opts.Now().UTC()}, "", "\t")
	if err != nil {
		return fmt.Errorf("inventory: save: %w", err)
	}
	return writeAtomic(path, append(data, '\n'))
}

// tempPrefix names the temporary files Save writes beside path.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// writeAtomic replaces path with data so that a crash leaves either the old
// or the new content: write a temporary file in the same directory (rename
// is only atomic within a file system), fsync it, rename it over path and
// fsync the directory so the rename itself is durable.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tempPrefix(path))
	if err != nil {
		return fmt.Errorf("inventory: save: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("inventory: save %s: %w", path, err)
		}
	}()
	// The inventory says which devices are on the network and when: not
	// for other users. CreateTemp already uses 0600; Chmod makes it
	// independent of that detail.
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// removeStaleTemps deletes temporary files an interrupted Save left beside
// path. Only one inventory owns a state file, so none of them is in use.
func removeStaleTemps(path string) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return
	}
	prefix := tempPrefix(path)
	for _, de := range entries {
		if de.Type().IsRegular() && strings.HasPrefix(de.Name(), prefix) {
			os.Remove(filepath.Join(filepath.Dir(path), de.Name()))
		}
	}
}
