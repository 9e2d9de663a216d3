package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/internal/testpcaps"
	"github.com/picoseg/picoseg/pkg/learn"
	"github.com/picoseg/picoseg/pkg/packet"
)

const learnBase = `[daemon]
timezone = "UTC"

[[zone]]
name = "iot"
networks = ["10.0.0.0/8", "192.168.0.0/16"]

[[zone]]
name = "wan"
networks = ["0.0.0.0/0", "::/0"]

[[segment]]
from = "iot"
to = "wan"
action = "micro"

[[segment]]
from = "iot"
to = "iot"
action = "micro"
`

// TestLearnCheckExplainDiff runs the walk-through on the Hue bridge's
// setup capture: learn writes a proposal (flags after the captures too),
// check accepts it, explain names the learned rule for the bridge's
// DNS flow, diff lists what it newly allows and exits 1, and a policy
// against itself exits 0. Learning twice writes the same bytes.
func TestLearnCheckExplainDiff(t *testing.T) {
	hue := filepath.Join(testpcaps.Dir(t), "iot/iotsentinel_hue-bridge_setup.pcap")
	if _, err := os.Stat(hue); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	base, out := filepath.Join(dir, "base.toml"), filepath.Join(dir, "proposal.toml")
	if err := os.WriteFile(base, []byte(learnBase), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCmd(t, "learn", "-c", base, hue, "-o", out, "--margin", "30"); code != 0 || !strings.Contains(errs, "newly allowed, 0 newly denied") {
		t.Fatalf("learn: exit %d\n%s", code, errs)
	}
	code, stdout, errs := runCmd(t, "learn", "--margin", "30", "-c", base, hue)
	first, _ := os.ReadFile(out)
	if code != 0 || stdout != string(first) {
		t.Fatalf("learn to stdout: exit %d, differs from -o:\n%s\n%s", code, stdout, errs)
	}
	if !strings.Contains(stdout, "a 30% margin") {
		t.Errorf("the margin is not the one asked for")
	}
	if code, stdout, errs := runCmd(t, "check", "-c", out); code != 0 || !strings.Contains(stdout, ": ok: ") {
		t.Fatalf("check: exit %d\n%s%s", code, stdout, errs)
	}
	// The portal is learned by DNS name, which explain (offline, with no
	// DNS answers) cannot match; the bridge's resolver stays an address.
	code, stdout, errs = runCmd(t, "explain", "-c", out, "--from", "10.10.10.6", "--from-mac", "00:17:88:24:76:ff", "--to", "10.10.10.1", "--proto", "udp", "--dport", "53")
	if code != 0 || !strings.HasPrefix(stdout, "accept") || !strings.Contains(stdout, "rule dev-0017882476ff-to-10.10.10.1 at "+out) {
		t.Errorf("explain: exit %d\n%s%s", code, stdout, errs)
	}
	code, stdout, errs = runCmd(t, "diff", base, out, hue)
	if code != 1 || !strings.Contains(stdout, " 0 newly denied") || !strings.Contains(stdout, "newly allowed  2016-09-07") {
		t.Errorf("diff base proposal: exit %d\n%s%s", code, stdout, errs)
	}
	if code, stdout, errs := runCmd(t, "diff", out, out, hue, "--json"); code != 0 || !strings.Contains(stdout, `"newly_allowed": []`) {
		t.Errorf("diff proposal proposal: exit %d\n%s%s", code, stdout, errs)
	}
	// CI that only minds what a change breaks: newly allowed is fine.
	if code, _, errs := runCmd(t, "diff", "--fail-on", "denied", base, out, hue); code != 0 {
		t.Errorf("diff --fail-on denied base proposal: exit %d\n%s", code, errs)
	}
	if code, _, errs := runCmd(t, "diff", "--fail-on", "denied", out, base, hue); code != 1 {
		t.Errorf("diff --fail-on denied proposal base: exit %d\n%s", code, errs)
	}
}

func TestLearnAndDiffUsage(t *testing.T) {
	for _, args := range [][]string{
		{"learn", "-c", "x.toml"},
		{"learn", "-c", "x.toml", "--margin", "-5", "a.pcap"},
		{"diff", "a.toml", "b.toml"},
		{"diff", "--bogus"},
		{"diff", "--fail-on", "maybe", "a.toml", "b.toml", "c.pcap"},
	} {
		if code, _, _ := runCmd(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, _, errs := runCmd(t, "diff", "/nonexistent/a.toml", "/nonexistent/b.toml", "c.pcap"); code != 2 || errs == "" {
		t.Errorf("diff of missing policies: exit %d %q, want 2", code, errs)
	}
}

// TestLearnFromDaemonRecordFile learns from a record as the daemon saves
// it (run --learn-record), with no capture: check accepts the proposal
// and explain names the learned rule.
func TestLearnFromDaemonRecordFile(t *testing.T) {
	dir := t.TempDir()
	base, rec, out := filepath.Join(dir, "base.toml"), filepath.Join(dir, "learn.json"), filepath.Join(dir, "proposal.toml")
	if err := os.WriteFile(base, []byte(learnBase), 0o644); err != nil {
		t.Fatal(err)
	}
	r := learn.NewRecorder(0, time.UTC)
	var p packet.Packet
	p.Kind, p.Proto, p.HasMAC, p.SrcMAC = packet.KindOK, packet.ProtoTCP, true, [6]byte{2, 0, 0, 0, 0, 0x21}
	p.Src, p.Dst, p.DstPort = netip.MustParseAddr("10.77.0.21"), netip.MustParseAddr("203.0.113.5"), 8883
	for i := 0; i < 5; i++ {
		r.FlowStarted(&p, time.Date(2026, 11, 23, 14, i, 0, 0, time.UTC))
	}
	if err := r.Save(rec); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCmd(t, "learn", "-c", base, "--from-daemon", rec, "-o", out); code != 0 {
		t.Fatalf("learn: exit %d\n%s", code, errs)
	}
	if code, stdout, errs := runCmd(t, "check", "-c", out); code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, stdout, errs)
	}
	code, stdout, errs := runCmd(t, "explain", "-c", out, "--from", "10.77.0.21", "--from-mac", "02:00:00:00:00:21", "--to", "203.0.113.5", "--proto", "tcp", "--dport", "8883")
	if code != 0 || !strings.HasPrefix(stdout, "accept") || !strings.Contains(stdout, "rule dev-020000000021-to-203.0.113.5") {
		t.Errorf("explain: exit %d\n%s%s", code, stdout, errs)
	}
	if code, _, _ := runCmd(t, "learn", "-c", base, "--from-daemon", filepath.Join(dir, "none.json")); code != 1 {
		t.Errorf("a missing record: exit %d, want 1", code)
	}
}
