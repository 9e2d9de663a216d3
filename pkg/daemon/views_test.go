package daemon

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/inventory"
)

// Every view fetches its answer over a real socket and prints it both ways.
func TestViewsFetchAndPrint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.sock")
	var asked []string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop, err := serveStatus(ctx, path, handlers{
		"status": func(string) any { return Status{Version: "v-test", Mode: "enforce"} },
		"flows": func(device string) any {
			asked = append(asked, device)
			return []FlowView{{Src: "10.77.0.11:40000", Dst: "192.168.1.20:22", Proto: "tcp", SrcDevice: device, Verdict: "drop"}}
		},
		"alerts": func(string) any {
			return []alert.Alert{{Type: alert.TypeNewDevice, Device: "cam", Message: "new device cam"}}
		},
		"devices": func(string) any { return []inventory.Device{{Name: "cam", Addrs: []string{"10.77.0.11"}}} },
		"grants": func(string) any {
			return []GrantView{{Src: "10.77.0.20", Rule: "hub-admin", Service: "tcp/22", Remaining: 12}}
		},
	}, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	want := map[string]string{"status": "v-test", "flows": "front-cam", "alerts": "new device cam", "devices": "10.77.0.11", "grants": "hub-admin"}
	for _, v := range Views() {
		ans, err := v.Fetch(path, "front-cam")
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		var text bytes.Buffer
		if err := ans.WriteText(&text); err != nil || !strings.Contains(text.String(), want[v.Name]) {
			t.Errorf("%s: text %q, %v; want it to name %q", v.Name, text.String(), err, want[v.Name])
		}
		if ans.Value == nil {
			t.Errorf("%s: no value for JSON", v.Name)
		}
	}
	if len(asked) != 1 || asked[0] != "front-cam" {
		t.Errorf("flows asked for %q, want the device", asked)
	}
	if _, err := ViewNamed("flow"); err == nil || !strings.Contains(err.Error(), "status, flows, alerts, devices or grants") {
		t.Errorf("ViewNamed(flow): %v", err)
	}
}
