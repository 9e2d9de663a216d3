package alert

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestJSONLRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.jsonl")
	w, err := dialJSONL(path, 1000, 2)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a := sampleAlert()
	for i := range 50 {
		a.DPort = uint16(i)
		if err := w.Write(context.Background(), &a); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("alerts.jsonl.3 exists with keep=2: %v", err)
	}
	// Newest lines are in path, older ones in .1, then .2; ports
	// decrease along that order and no file exceeds the size.
	last := 1 << 20
	lines := 0
	for _, name := range []string{path, path + ".1", path + ".2"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1000 {
			t.Errorf("%s is %d bytes, over the 1000 limit", filepath.Base(name), fi.Size())
		}
		f, _ := os.Open(name)
		var ports []int
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var got Alert
			if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
				t.Fatalf("%s: %v in %s", filepath.Base(name), err, sc.Text())
			}
			if got.Device != "camera-1" || got.Layer != a.Layer || got.Type != TypeFlowDenied || got.Src != a.Src {
				t.Fatalf("round trip: %+v", got)
			}
			ports = append(ports, int(got.DPort))
			lines++
		}
		f.Close()
		if len(ports) == 0 || ports[len(ports)-1] >= last {
			t.Fatalf("%s holds ports %v, not older than the previous file's", filepath.Base(name), ports)
		}
		last = ports[0]
	}
	if lines >= 50 || lines < 3 {
		t.Errorf("%d lines kept over 3 files", lines)
	}
}

func TestJSONForm(t *testing.T) {
	a := Alert{Type: TypeDaemonStarted, Severity: SeverityInfo, Count: 1, Message: "picoseg started"}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"0001-01-01T00:00:00Z","type":"daemon_started","severity":"info","count":1,"message":"picoseg started"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}
