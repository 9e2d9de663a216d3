//go:build unix

package inventory

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO at the leases path (no dnsmasq writing into it) cannot hang
// `status devices`: the file is refused as not a regular file, and says so.
func TestLeasesFIFODoesNotHang(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dhcp.leases")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	inv, _ := newInv(t, Options{Leases: path})
	inv.Observe(Observation{Addr: addr("10.77.0.20"), MAC: mac(0x11), HasMAC: true, Time: time.Now(), Flows: 1})
	done := make(chan []Device, 1)
	go func() { done <- inv.Devices() }()
	select {
	case devs := <-done:
		if len(devs) != 1 {
			t.Fatalf("devices = %+v", devs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Devices hung on a FIFO at the leases path")
	}
	if st := inv.Stats(); !strings.Contains(st.LeaseErr, "not a regular file") {
		t.Fatalf("LeaseErr = %q, want it to say the leases path is not a regular file", st.LeaseErr)
	}
}
