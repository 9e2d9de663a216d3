package main

// Kernel tests of how the daemon names devices when it judges the kernel's
// fast-pathed flows again: conntrack knows their addresses, not their MACs.

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKernelReloadKeepsMACOnlyDeviceFlow: the camera is known only by its
// MAC (no ip, as a DHCP client is usually written). Its upload runs,
// fast-pathed. A reload that changes nothing about it judges the flow
// again from conntrack, which has no MAC: the flow must live on, and a
// new upload still pass. Before the engine remembered which MAC an
// address opened its accepted flows from, the flow was judged as an
// unknown host's and cut.
func TestKernelReloadKeepsMACOnlyDeviceFlow(t *testing.T) {
	f := newFixture(t)
	f.echo("wan", 8443)
	macOnly := func(s string) string {
		return strings.Replace(s, "mac = \"02:00:00:00:00:11\"\nip = [\"10.77.0.11\"]\n", "mac = \"02:00:00:00:00:11\"\n", 1)
	}
	pol := labPolicy(t, macOnly)
	if pol == labPolicy(t, nil) {
		t.Fatal("the lab policy changed: the camera's ip line was not found")
	}
	f.start(pol)
	ch := f.camUpload()
	changed := strings.Replace(pol, `max_new_flows = "10/s"`, `max_new_flows = "11/s"`, 1)
	if changed == pol {
		t.Fatal("the lab policy changed: no plugs rate to edit")
	}
	if err := os.WriteFile(f.policy, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	gen := f.status().Generation
	f.signal(syscall.SIGHUP)
	for deadline := time.Now().Add(3 * time.Second); f.status().Generation == gen && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	if g := f.status().Generation; g != gen+1 {
		t.Fatalf("generation %d after the reload, want %d", g, gen+1)
	}
	time.Sleep(1500 * time.Millisecond) // a cut flow's echoes stop within 300 ms
	if ch.broken.Load() != 0 {
		t.Fatal("the camera's running upload was cut by a reload that did not change its rule")
	}
	if !f.can("cam", "wan", 8443) {
		t.Error("a new upload from the camera was refused after the reload")
	}
}
