package replay

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/internal/testpcaps"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/policy"
)

// appZones puts the capture's local networks in a zone "lan" and the rest
// in "wan", each allowed to the other through the micro layer.
const appZones = `
[daemon]
timezone = "UTC"

[[zone]]
name = "wan"
networks = ["0.0.0.0/0"]

[[zone]]
name = "lan"
networks = ["10.10.10.0/24", "192.168.110.0/24"]

[[segment]]
from = "lan"
to = "*"
action = "micro"
`

func appReplay(t *testing.T, capture, rules string) *Report {
	t.Helper()
	f := filepath.Join(testpcaps.Dir(t), capture)
	if _, err := os.Stat(f); err != nil {
		t.Skipf("shared capture absent: %v", err)
	}
	cfg, _, err := config.Parse("app.toml", []byte(appZones+rules))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := New(pol)
	if err := r.File(f); err != nil {
		t.Fatal(err)
	}
	return r.Report()
}

// appEvents returns the report's events of type typ.
func appEvents(rep *Report, typ string) []Event {
	var out []Event
	for _, e := range rep.Events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// The TP-Link plug's TLS session to its cloud on tcp/50443 carries a
// ClientHello without a server name (TLS 1.0).
func TestReplayAppTPLinkTLS(t *testing.T) {
	const capture = "iot/iotsentinel_tplink-hs110-plug_setup.pcap"
	rule := func(app string) string {
		return "\n[[allow]]\nname = \"plug-cloud\"\nfrom = \"net:10.10.10.20/32\"\nto = \"zone:wan\"\nservices = [\"tcp/50443\"]\n" + app
	}
	t.Run("tls allowed", func(t *testing.T) {
		rep := appReplay(t, capture, rule("app = \"tls\"\n"))
		if len(rep.Apps) != 1 || rep.Apps[0].App != "tls" || rep.Apps[0].Rule != "plug-cloud" || rep.Apps[0].Name != "" {
			t.Fatalf("apps %+v", rep.Apps)
		}
		if n := len(appEvents(rep, "app_denied")) + len(appEvents(rep, "app_mismatch")); n != 0 {
			t.Errorf("%d app events", n)
		}
	})
	t.Run("server names required", func(t *testing.T) {
		rep := appReplay(t, capture, rule("app = \"tls\"\n[allow.tls]\nserver_names = [\"*.tplinkcloud.com\"]\n"))
		ev := appEvents(rep, "app_denied")
		if len(ev) != 1 || ev[0].App != "tls" || ev[0].AppDetail != "no server name" || ev[0].Layer != "pico" || ev[0].Rule != "plug-cloud" {
			t.Fatalf("app_denied events %+v", ev)
		}
		if len(rep.Apps) != 0 {
			t.Errorf("apps %+v", rep.Apps)
		}
	})
	t.Run("not http", func(t *testing.T) {
		rep := appReplay(t, capture, rule("app = \"http\"\n"))
		if ev := appEvents(rep, "app_mismatch"); len(ev) != 1 || ev[0].App != "http" {
			t.Fatalf("app_mismatch events %+v", ev)
		}
	})
}

// The Hue bridge's setup speaks plain HTTP to the Hue portal and to
// Philips hosts; the app on the phone to the bridge itself.
func TestReplayAppHueHTTP(t *testing.T) {
	const capture = "iot/iotsentinel_hue-bridge_setup.pcap"
	rule := func(hosts string) string {
		return "\n[[allow]]\nname = \"hue-web\"\nfrom = \"zone:lan\"\nto = \"any\"\nservices = [\"tcp/80\"]\napp = \"http\"\n[allow.http]\nhosts = " + hosts + "\n"
	}
	all := appReplay(t, capture, rule(`["bridge.meethue.com", "*.philips.com", "10.10.10.6"]`))
	names := map[string]int{}
	for _, a := range all.Apps {
		names[a.Name]++
	}
	if len(all.Apps) < 10 || names["bridge.meethue.com:80"] == 0 || names["dcp.cpp.philips.com:80"] == 0 || names["10.10.10.6"] == 0 {
		t.Fatalf("identified %d flows, names %v", len(all.Apps), names)
	}
	if ev := appEvents(all, "app_denied"); len(ev) != 0 {
		t.Errorf("allowed hosts denied: %+v", ev[0])
	}
	narrow := appReplay(t, capture, rule(`["bridge.meethue.com"]`))
	denied := map[string]bool{}
	for _, e := range appEvents(narrow, "app_denied") {
		if e.AppDetail != "host not allowed" || e.Rule != "hue-web" {
			t.Errorf("event %+v", e)
		}
		denied[e.AppName] = true
	}
	if !denied["10.10.10.6"] || !denied["dcp.cpp.philips.com:80"] || denied["bridge.meethue.com:80"] {
		t.Errorf("denied hosts %v", denied)
	}
	var text bytes.Buffer
	if err := narrow.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), `[http "10.10.10.6": host not allowed]`) || !strings.Contains(text.String(), "APPLICATIONS") {
		t.Errorf("text report:\n%s", text.String())
	}
}

// The Modbus capture is an HMI polling a PLC with function 3 on unit 1,
// picked up mid-stream: every request is judged.
func TestReplayAppModbus(t *testing.T) {
	const capture = "ics/ndpi_modbus.pcap"
	rule := func(units string) string {
		return "\n[[allow]]\nname = \"hmi-plc\"\nfrom = \"net:192.168.110.131/32\"\nto = \"net:192.168.110.138/32\"\nservices = [\"tcp/502\"]\napp = \"modbus\"\n[allow.modbus]\nread_only = true\nunits = " + units + "\n"
	}
	ok := appReplay(t, capture, rule("[1]"))
	if len(ok.Apps) != 1 || ok.Apps[0].App != "modbus" || ok.DroppedFlows != 0 {
		t.Fatalf("apps %+v, dropped flows %d, events %+v", ok.Apps, ok.DroppedFlows, ok.Events)
	}
	if pico := ok.ByLayer["pico"]; pico.Packets != ok.Packets || pico.Dropped != 0 {
		t.Errorf("pico layer %+v of %d packets", pico, ok.Packets)
	}
	other := appReplay(t, capture, rule("[2]"))
	ev := appEvents(other, "app_denied")
	if len(ev) != 1 || ev[0].AppDetail != "unit not allowed" || ev[0].AppCode == nil || *ev[0].AppCode != 3 {
		t.Fatalf("app_denied events %+v", ev)
	}
}
