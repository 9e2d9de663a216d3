package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const appCmdPolicy = `
[[zone]]
name = "wan"
networks = ["0.0.0.0/0"]

[[zone]]
name = "iot"
networks = ["10.77.0.0/24"]

[[segment]]
from = "iot"
to = "wan"
action = "micro"

[[allow]]
name = "cloud"
from = "zone:iot"
to = "zone:wan"
services = ["tcp/443"]
app = "tls"
[allow.tls]
server_names = ["*.example.com"]

[[allow]]
name = "plc"
from = "zone:iot"
to = "zone:wan"
services = ["tcp/502"]
app = "modbus"
`

// check says which rules read their flows' application and what that
// costs; explain says a flow must speak it.
func TestAppInCheckAndExplain(t *testing.T) {
	pol := filepath.Join(t.TempDir(), "app.toml")
	if err := os.WriteFile(pol, []byte(appCmdPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t, "check", "-c", pol)
	if code != 0 || !strings.Contains(out, "application of cloud: tls; its first packets are read") || !strings.Contains(out, "application of plc: modbus; every packet is judged") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCmd(t, "explain", "-c", pol, "--from", "10.77.0.5", "--to", "203.0.113.9", "--proto", "tcp", "--dport", "443", "--json")
	if code != 0 || !strings.Contains(out, `"app": "tls"`) || !strings.Contains(out, `"verdict": "need-more"`) {
		t.Fatalf("explain: exit %d\n%s%s", code, out, errs)
	}
}
