package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bindingPolicy is the demo policy with the hub known only by its address
// (no mac) and allowed to reach the plugs on tcp/80 and udp/5683, and
// plug2 left out of the policy: a host the policy does not know, on
// another port of the IoT bridge.
func bindingPolicy(t *testing.T, alerts string) string {
	t.Helper()
	return labPolicy(t, func(s string) string {
		for _, cut := range []string{
			"mac = \"02:00:00:00:00:30\"\n",
			"[[device]]\nname = \"plug2\"\nmac = \"02:00:00:00:00:22\"\nip = [\"10.77.0.22\"]\ngroups = [\"plugs\"]\n",
		} {
			if strings.Count(s, cut) != 1 {
				t.Fatalf("rules/demo.toml changed: %q is not in it once", cut)
			}
			s = strings.Replace(s, cut, "", 1)
		}
		s = strings.Replace(s, "to = \"group:plugs\"\nservices = [\"tcp/80\"]", "to = \"group:plugs\"\nservices = [\"tcp/80\", \"udp/5683\"]", 1)
		return s + "\n[[alert.sink]]\ntype = \"jsonl\"\npath = \"" + alerts + "\"\n"
	})
}

// TestKernelBindingToBridgePort: the hub is known only by its address.
// Once it has talked, it is bound to its bridge port and MAC; another host
// on another port of the IoT bridge (plug2, with its own MAC) sending a
// TCP SYN and UDP datagrams from the hub's address to plug1, which the
// hub's rule allows, is spoofing: nothing arrives, while the hub's own
// traffic still passes. The control shows the lab delivers the forged
// packets without picoseg.
func TestKernelBindingToBridgePort(t *testing.T) {
	if _, err := exec.LookPath("hping3"); err != nil {
		t.Skip("hping3 is not installed")
	}
	f := newFixture(t)
	hub, plug1 := f.lab.Host("hub"), f.lab.Host("plug1")
	f.echo("plug1", 80)
	syns := f.seen("plug1", 80)
	dgrams := f.udpSeen("plug1", hub.Addr, 5683)
	// Each run uses its own source ports: the control's conntrack
	// entries are still there when picoseg starts.
	attack := func(sport int) {
		f.hping("plug2", "-S", "-c", "3", "-i", "u20000", "-a", hub.Addr.String(), "-s", strconv.Itoa(sport), "-p", "80", plug1.Addr.String())
		f.hping("plug2", "-2", "-c", "3", "-i", "u20000", "-a", hub.Addr.String(), "-s", strconv.Itoa(sport+1000), "-p", "5683", plug1.Addr.String())
	}

	// Control: without picoseg the forged packets reach plug1.
	attack(41000)
	ctrlSYN, ctrlUDP := syns(), dgrams()
	if ctrlSYN != 3 || ctrlUDP != 3 {
		t.Fatalf("control: %d of 3 forged SYNs and %d of 3 forged datagrams reached plug1 without picoseg", ctrlSYN, ctrlUDP)
	}

	alerts := f.dir + "/alerts.jsonl"
	f.start(bindingPolicy(t, alerts))
	// The hub talks first: its address is bound to its port and MAC.
	if !f.can("hub", "plug1", 80) {
		t.Fatal("the hub's own connection to plug1:80 is refused: the rule is not real")
	}
	beforeSYN, beforeUDP := syns(), dgrams()
	attack(45000)
	if n := syns() - beforeSYN; n != 0 {
		t.Errorf("%d forged SYNs from another port of the bridge, claiming the hub's address, reached plug1", n)
	}
	if n := dgrams() - beforeUDP; n != 0 {
		t.Errorf("%d forged datagrams from another port of the bridge, claiming the hub's address, reached plug1", n)
	}
	// The hub itself still gets through, on TCP and UDP.
	if !f.can("hub", "plug1", 80) {
		t.Error("after the attack the hub's own connection to plug1:80 is refused")
	}
	before := dgrams()
	f.hping("hub", "-2", "-c", "2", "-i", "u20000", "-s", "43000", "-p", "5683", plug1.Addr.String())
	if n := dgrams() - before; n != 2 {
		t.Errorf("%d of the hub's own 2 datagrams reached plug1", n)
	}
	var text string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(alerts)
		if text = string(b); strings.Contains(text, `"spoofed_address"`) {
			break
		}
	}
	if !strings.Contains(text, `"spoofed_address"`) || !strings.Contains(text, "bridge port") {
		t.Errorf("no spoofed_address alert naming the bridge port:\n%s", text)
	}
}
