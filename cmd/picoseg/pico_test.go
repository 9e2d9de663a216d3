package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const picoCheckPolicy = `
[daemon]
timezone = "Europe/Berlin"

[[zone]]
name = "iot"
interfaces = ["br-iot"]
networks = ["10.77.0.0/24"]

[[zone]]
name = "wan"
interfaces = ["wan0"]
networks = ["0.0.0.0/0"]

[[segment]]
from = "iot"
to = "wan"
action = "micro"

[[allow]]
name = "office"
from = "zone:iot"
to = "zone:wan"
services = ["tcp/443"]
hours = ["06:00-23:00"]
days = ["mon-fri"]
packet_size = "40-1500"

[[allow]]
name = "office-too"
from = "zone:iot"
to = "zone:wan"
services = ["tcp/8443"]
hours = ["06:00-23:00"]
days = ["mon-fri"]
packet_size = "40-1500"

[[allow]]
name = "dns-out"
from = "zone:iot"
to = "zone:wan"
services = ["udp/53"]
max_peers = 3
max_ports = 2
`

func writePolicy(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "policy.toml")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// check lists the classes the kernel checks (rules with the same bounds
// share one) and the fan-out bounds.
func TestCheckShowsPico(t *testing.T) {
	code, out, errs := runCmd(t, "check", "-c", writePolicy(t, picoCheckPolicy))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"class 1   open 06:00-23:00 on mon tue wed thu fri (Europe/Berlin; the kernel drops a packet outside it), packets of 40-1500 bytes (on TCP only the lower bound); rules office, office-too",
		"fan-out bound of dns-out: at most 3 peers and 2 ports on one peer per device per 1m0s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "class 2") {
		t.Errorf("a rule without kernel checks got a class:\n%s", out)
	}
}

// A policy with more classes than the mark field holds is refused by
// check, as the daemon would refuse to install it.
func TestCheckRefusesTooManyClasses(t *testing.T) {
	text := picoCheckPolicy
	for i := range 30 {
		text += fmt.Sprintf("\n[[allow]]\nname = \"r%d\"\nfrom = \"zone:iot\"\nto = \"zone:wan\"\nservices = [\"tcp/%d\"]\nmax_flow_bytes = %d\n", i, 1000+i, 1000+i)
	}
	code, _, errs := runCmd(t, "check", "-c", writePolicy(t, text))
	if code != 1 || !strings.Contains(errs, "32 pico classes") || !strings.Contains(errs, "holds 28") {
		t.Errorf("exit %d, stderr %q: want a refusal naming 32 classes and the 28 the mask holds", code, errs)
	}
}

// explain names the deciding rule's fan-out bound, which it cannot judge
// from one flow.
func TestExplainShowsFanOut(t *testing.T) {
	f := writePolicy(t, picoCheckPolicy)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--proto", "tcp", "--dport", "443", "--at", "mon 10:00"}, "pico      need-more rule office: allowed so far; the flow is still being inspected\n"},
		{[]string{"--proto", "udp", "--dport", "53"}, "fan-out bound: at most 3 peers and 2 ports on one peer per device per 1m0s"},
	} {
		args := append([]string{"explain", "-c", f, "--from", "10.77.0.5", "--to", "8.8.8.8", "--in", "br-iot", "--out", "wan0"}, tc.args...)
		code, out, errs := runCmd(t, args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("explain %v: exit %d, output lacks %q:\n%s%s", tc.args, code, tc.want, out, errs)
		}
	}
}
