package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// openwrtLeases is /tmp/dhcp.leases as dnsmasq on OpenWrt writes it, with
// a DHCPv6 part, plus junk.
const openwrtLeases = `1740830400 02:00:00:00:00:11 10.77.0.20 kitchen-plug 01:02:00:00:00:00:11
1740830400 02:00:00:00:00:22 10.77.0.50 * *
0 02:00:00:00:00:33 10.77.0.60 nas *
this is not a lease
1740830400 02:00:00:00:00:44 10.77.0.999 broken *
1740830400 zz:00:00:00:00:44 10.77.0.70 badmac *

1740830400 02:00:00:00:00:55 10.77.0.80 evil"name *
-5 02:00:00:00:00:66 10.77.0.90 negative *
duid 00:01:00:01:2c:aa:bb:cc:02:00:00:00:00:01
1740830400 1234567 fd00:77::20 kitchen-plug 00:01:00:01:2c:aa:bb:cc:02:00:00:00:00:11
`

func TestReadLeases(t *testing.T) {
	leases, err := ReadLeases(strings.NewReader(openwrtLeases))
	var skipped *SkippedLinesError
	if !errors.As(err, &skipped) || skipped.Lines != 4 || skipped.First != 4 {
		t.Fatalf("err = %v, want 4 skipped lines from line 4", err)
	}
	exp := time.Unix(1740830400, 0)
	want := []Lease{
		{Expiry: exp, MAC: "02:00:00:00:00:11", Addr: "10.77.0.20", Hostname: "kitchen-plug"},
		{Expiry: exp, MAC: "02:00:00:00:00:22", Addr: "10.77.0.50"},
		{MAC: "02:00:00:00:00:33", Addr: "10.77.0.60", Hostname: "nas"},
		{Expiry: exp, MAC: "02:00:00:00:00:55", Addr: "10.77.0.80"}, // the name is refused, the lease kept
		{Expiry: exp, Addr: "fd00:77::20", Hostname: "kitchen-plug"},
	}
	if diff := cmp.Diff(want, leases); diff != "" {
		t.Fatalf("leases (-want +got):\n%s", diff)
	}

	// A line longer than any lease is junk; the next line still parses.
	long := strings.Repeat("x", 3*maxLeaseLine) + "\n0 02:00:00:00:00:11 10.0.0.1 a *\n" + strings.Repeat("y", 2*maxLeaseLine)
	leases, err = ReadLeases(strings.NewReader(long))
	if !errors.As(err, &skipped) || skipped.Lines != 2 || skipped.First != 1 || len(leases) != 1 || leases[0].Hostname != "a" {
		t.Fatalf("long lines: %v, %+v", err, leases)
	}

	// No trailing newline, nothing wrong.
	leases, err = ReadLeases(strings.NewReader("0 02:00:00:00:00:11 10.0.0.1 a *"))
	if err != nil || len(leases) != 1 {
		t.Fatalf("last line without newline: %v, %+v", err, leases)
	}
}

func FuzzReadLeases(f *testing.F) {
	f.Add(openwrtLeases)
	f.Add("0 02:00:00:00:00:11 10.0.0.1 a *")
	f.Add("duid 00:01\n\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		leases, err := ReadLeases(strings.NewReader(s))
		var skipped *SkippedLinesError
		if err != nil && !errors.As(err, &skipped) {
			t.Fatalf("error other than skipped lines from a string reader: %v", err)
		}
		for _, l := range leases {
			if l.Hostname != "" && !validHostname(l.Hostname) {
				t.Fatalf("hostname %q passed", l.Hostname)
			}
			if l.Addr == "" {
				t.Fatalf("lease without address: %+v", l)
			}
		}
	})
}

func TestHostnames(t *testing.T) {
	dir := t.TempDir()
	leasesPath := filepath.Join(dir, "dhcp.leases")
	inv, clk := newInv(t, Options{Leases: leasesPath})
	inv.Observe(Observation{MAC: plug, HasMAC: true, Addr: addr("10.77.0.20")})
	inv.Observe(Observation{Addr: addr("fd00:77::20")})
	inv.Observe(Observation{MAC: camera, HasMAC: true, Addr: addr("10.77.0.50")})

	hostnames := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, d := range inv.Devices() {
			out[d.MAC+d.Addrs[0]] = d.Hostname
		}
		return out
	}
	// No leases file yet (dnsmasq not started): no names, and it says why.
	if got := hostnames(); got["02:00:00:00:00:1110.77.0.20"] != "" {
		t.Fatalf("hostnames without a leases file: %v", got)
	}
	if st := inv.Stats(); st.LeaseErr == "" {
		t.Error("Stats does not say the leases file is missing")
	}

	if err := os.WriteFile(leasesPath, []byte(openwrtLeases), 0o644); err != nil {
		t.Fatal(err)
	}
	// Within LeaseRecheck of the last look: not read yet.
	if got := hostnames(); got["02:00:00:00:00:1110.77.0.20"] != "" {
		t.Fatalf("leases re-read before LeaseRecheck: %v", got)
	}
	clk.Advance(LeaseRecheck)
	want := map[string]string{
		"02:00:00:00:00:1110.77.0.20": "kitchen-plug",
		"fd00:77::20":                 "kitchen-plug", // by address, from the DHCPv6 lease
		"02:00:00:00:00:2210.77.0.50": "",             // "*"
	}
	if diff := cmp.Diff(want, hostnames()); diff != "" {
		t.Fatalf("hostnames (-want +got):\n%s", diff)
	}
	if st := inv.Stats(); st.Leases != 5 || st.LeaseLinesSkipped != 4 || st.LeaseErr != "" {
		t.Errorf("stats = %+v", st)
	}

	// The camera gets a name; the file changes (size and mtime).
	renamed := strings.Replace(openwrtLeases, "10.77.0.50 * *", "10.77.0.50 front-cam *", 1)
	if err := os.WriteFile(leasesPath, []byte(renamed), 0o644); err != nil {
		t.Fatal(err)
	}
	clk.Advance(LeaseRecheck)
	if got := hostnames()["02:00:00:00:00:2210.77.0.50"]; got != "front-cam" {
		t.Fatalf("camera hostname after the file changed = %q", got)
	}

	// Leases gone (dnsmasq restarted with an empty file): the last known
	// names stay with the devices, and in the state file.
	if err := os.WriteFile(leasesPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	clk.Advance(LeaseRecheck)
	if got := hostnames()["02:00:00:00:00:2210.77.0.50"]; got != "front-cam" {
		t.Fatalf("camera hostname after its lease went = %q, want it kept", got)
	}
}
