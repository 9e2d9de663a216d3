package inventory

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSaveAtomic(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "devices.json")
	inv, clk := newInv(t, Options{StatePath: state})
	inv.Observe(Observation{MAC: plug, HasMAC: true, Addr: addr("10.77.0.20"), Up: 42, Time: clk.Now()})
	for range 3 {
		if err := inv.Save(); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "devices.json" {
		t.Fatalf("directory holds %v, want only devices.json", names(entries))
	}
	st, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", st.Mode().Perm())
	}
	var sf stateFile
	data, _ := os.ReadFile(state)
	if err := json.Unmarshal(data, &sf); err != nil || sf.Version != 1 || len(sf.Devices) != 1 || sf.Devices[0].BytesUp != 42 {
		t.Fatalf("state file = %s (%v)", data, err)
	}

	// No state path: Save is a no-op.
	mem, _ := newInv(t, Options{})
	if err := mem.Save(); err != nil {
		t.Fatal(err)
	}

	// A directory that does not exist: an error, and nothing left behind.
	bad, _ := newInv(t, Options{StatePath: filepath.Join(dir, "missing", "devices.json")})
	if err := bad.Save(); err == nil || !strings.Contains(err.Error(), "inventory: save") {
		t.Fatalf("Save into a missing directory = %v", err)
	}
}

// TestCrashBeforeRename simulates a crash after the temporary file was
// written but before it was renamed: the old state is what loads, and the
// leftover is cleaned up.
func TestCrashBeforeRename(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "devices.json")
	inv, clk := newInv(t, Options{StatePath: state})
	inv.Observe(Observation{MAC: plug, HasMAC: true, Addr: addr("10.77.0.20"), Up: 1, Time: clk.Now()})
	if err := inv.Save(); err != nil {
		t.Fatal(err)
	}
	// The interrupted save: a newer, half-written state in a temp file.
	tmp := filepath.Join(dir, tempPrefix(state)+"123456")
	if err := os.WriteFile(tmp, []byte(`{"version":1,"devices":[{"mac":"02:00:00:00:00:22"`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Someone else's file that merely looks similar is left alone.
	other := filepath.Join(dir, "devices.json.bak")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	inv2, err := New(Options{StatePath: state, Now: clk.Now})
	if err != nil {
		t.Fatalf("New after a crash: %v", err)
	}
	devs := inv2.Devices()
	if len(devs) != 1 || devs[0].MAC != "02:00:00:00:00:11" || devs[0].BytesUp != 1 {
		t.Fatalf("devices after the crash = %+v, want the plug as last saved", devs)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover temp file still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("unrelated file removed: %v", err)
	}
	if inv2.Observe(Observation{MAC: plug, HasMAC: true}) {
		t.Error("the plug is new after the crash")
	}
}

func TestCorruptState(t *testing.T) {
	for _, tc := range []struct{ name, content string }{
		{"truncated", `{"version":1,"devices":[{"mac":"02:00`},
		{"garbage", "\x00\x01not json"},
		{"version", `{"version":99,"devices":[]}`},
		{"bad mac", `{"version":1,"devices":[{"mac":"zz:00:00:00:00:11","addrs":[]}]}`},
		{"bad addr", `{"version":1,"devices":[{"mac":"02:00:00:00:00:11","addrs":["10.0.0.300"]}]}`},
		{"duplicate", `{"version":1,"devices":[{"mac":"02:00:00:00:00:11","addrs":[]},{"mac":"02:00:00:00:00:11","addrs":[]}]}`},
		{"no key", `{"version":1,"devices":[{"addrs":[]}]}`},
		{"trailing", `{"version":1,"devices":[]} {}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "devices.json")
			if err := os.WriteFile(state, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			inv, err := New(Options{StatePath: state})
			var ce *CorruptStateError
			if !errors.As(err, &ce) {
				t.Fatalf("New = %v, want a *CorruptStateError", err)
			}
			if inv == nil {
				t.Fatal("no inventory with the corrupt-state warning")
			}
			if ce.MovedTo != state+".corrupt" {
				t.Errorf("MovedTo = %q", ce.MovedTo)
			}
			if kept, _ := os.ReadFile(state + ".corrupt"); string(kept) != tc.content {
				t.Errorf("corrupt file not kept: %q", kept)
			}
			// The inventory works and saves over the corrupt file's path.
			if !inv.Observe(Observation{MAC: plug, HasMAC: true, Time: time.Unix(5, 0)}) {
				t.Error("empty inventory: plug not new")
			}
			if err := inv.Save(); err != nil {
				t.Fatal(err)
			}
			if _, err := New(Options{StatePath: state}); err != nil {
				t.Fatalf("reload after Save: %v", err)
			}
		})
	}

	// An unreadable state path is not corruption: New fails.
	dir := t.TempDir()
	if inv, err := New(Options{StatePath: dir}); err == nil || inv != nil {
		t.Fatalf("New with a directory as state file = %v, %v; want an error", inv, err)
	}
}

func names(entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
