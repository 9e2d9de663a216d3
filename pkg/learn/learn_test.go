package learn

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/internal/testpcaps"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/nft"
	"github.com/picoseg/picoseg/pkg/policy"
)

const basePolicy = "testdata/base.toml"

// learnFrom learns from captures over the base policy at base and returns
// the proposal and its text.
func learnFrom(t *testing.T, base string, opts Options, captures ...string) (*Proposal, []byte) {
	t.Helper()
	l, _, err := policy.Load(base, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lr, err := New(l.Policy, l.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range captures {
		if err := lr.File(c); err != nil {
			t.Fatal(err)
		}
	}
	p := lr.Propose()
	text, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := p.Write(&b, text); err != nil {
		t.Fatal(err)
	}
	return p, b.Bytes()
}

// loadProposal writes text beside nothing else and loads it as `check`
// does, holding it to the pico classes its mark_mask has room for.
func loadProposal(t *testing.T, text []byte) (*policy.Policy, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "proposal.toml")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	l, _, err := policy.Load(path, policy.Options{})
	if err != nil {
		t.Fatalf("the proposal does not load: %v\n%s", err, text)
	}
	marks := nft.Marks{Mask: l.Config.Daemon.MarkMask}
	if n := len(l.Policy.Classes); n > marks.MaxClasses() {
		t.Fatalf("the proposal has %d pico classes, mark_mask holds %d", n, marks.MaxClasses())
	}
	return l.Policy, path
}

func loadConfig(t testing.TB) *config.Config {
	t.Helper()
	l, _, err := policy.Load(basePolicy, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Config
}

func writeProposal(t *testing.T, p *Proposal) []byte {
	t.Helper()
	text, err := os.ReadFile(basePolicy)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := p.Write(&b, text); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func loadBase(t testing.TB, path string) *policy.Policy {
	t.Helper()
	l, _, err := policy.Load(path, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Policy
}

// proposedDevices names the devices the proposal adds and the base
// devices it gives rules, but not those it flags as scans.
func proposedDevices(p *Proposal) map[string]bool {
	out := map[string]bool{}
	for _, d := range p.Devices {
		out[d.Device.Name] = true
	}
	for _, r := range p.Rules {
		if r.Allow.From.Kind == config.EndpointDevice {
			out[r.Allow.From.Name] = true
		}
	}
	for _, s := range p.Scans {
		delete(out, s) // left out on purpose
	}
	return out
}

var sharedIoT = []string{
	"iot/iotsentinel_hue-bridge_setup.pcap",
	"iot/iotsentinel_tplink-hs110-plug_setup.pcap",
	"iot/ndpi_mqtt.pcapng",
	"iot/zeek_mqtt.pcap",
	"iot/tcpdump_coap.pcap",
	"iot/zeek_mdns.pcap",
	"ics/ndpi_modbus.pcap",
}

// TestLearnSharedCaptures learns from each shared IoT capture: the
// proposal loads as `check` loads it, and replaying the same capture
// against it accepts every flow its devices opened, apart from those the
// proposal says it leaves out on purpose (the base policy's segments
// deny them, or calls them spoofed): exactly the flows the base policy
// also drops somewhere else than for want of an allow rule.
func TestLearnSharedCaptures(t *testing.T) {
	dir := testpcaps.Dir(t)
	base := loadBase(t, basePolicy)
	explained := 0
	defer func() {
		if explained == 0 && !t.Skipped() {
			t.Errorf("explain was asked about no learned rule")
		}
	}()
	for _, name := range sharedIoT {
		t.Run(filepath.Base(name), func(t *testing.T) {
			capture := filepath.Join(dir, name)
			if _, err := os.Stat(capture); err != nil {
				t.Skip(err)
			}
			p, text := learnFrom(t, basePolicy, Options{}, capture)
			pol, _ := loadProposal(t, text)
			if learnedAccepted(t, base, pol, p, capture) == 0 || len(p.Rules) == 0 {
				t.Errorf("learned no flow (%d rules):\n%s", len(p.Rules), text)
			}
			d, err := Diff(base, pol, []string{capture})
			if err != nil {
				t.Fatal(err)
			}
			if len(d.NewlyDenied) > 0 {
				t.Errorf("the proposal denies %d flows the base policy allowed: %+v", len(d.NewlyDenied), d.NewlyDenied[0])
			}
			explained += explainRules(t, p, pol)
		})
	}
}

// learnedAccepted replays capture against the base policy and the
// proposal: every flow a device of the proposal opened is accepted by it,
// unless the base policy dropped it for another reason than the want of
// an allow rule (what the proposal leaves out on purpose). It returns how
// many flows the proposal newly accepts.
func learnedAccepted(t *testing.T, base, pol *policy.Policy, p *Proposal, capture string) (learned int) {
	t.Helper()
	devs := proposedDevices(p)
	before, err := runPass(base, []string{capture})
	if err != nil {
		t.Fatal(err)
	}
	after, err := runPass(pol, []string{capture})
	if err != nil {
		t.Fatal(err)
	}
	for id, f := range after.flows {
		if !devs[f.out.Device] || slices.Contains(p.Contested, f.ends.opener) {
			continue // contested addresses are left out on purpose
		}
		was := before.flows[id]
		if f.out.Accepted {
			if !was.out.Accepted {
				learned++
			}
			continue
		}
		if was.out.Accepted || was.out.Layer == "micro" && was.out.Rule == "" {
			t.Errorf("flow %v %s -> %s:%d of device %s dropped by the proposal (%s); the base policy: %s",
				packetProto(f.ends.proto), f.ends.opener, f.ends.responder, f.ends.rport, f.out.Device, f.out, was.out)
		}
	}
	return learned
}

func packetProto(p uint8) string {
	return config.FormatService(config.Service{Proto: p, PortHi: 65535})
}

// explainRules asks explain about one flow of every learned rule from a
// device to a device or an address: the learned rule decides it.
func explainRules(t *testing.T, p *Proposal, pol *policy.Policy) (asked int) {
	t.Helper()
	eng := engine.New(pol, engine.Options{FlowCapacity: 16})
	for _, r := range p.Rules {
		a := r.Allow
		if len(a.Services) == 0 {
			continue
		}
		var from netip.Addr
		switch a.From.Kind {
		case config.EndpointDevice:
			from = deviceAddr(pol, a.From.Name)
		case config.EndpointGroup:
			from = memberAddr(pol, a.From.Name)
		}
		var to netip.Addr
		switch a.To.Kind {
		case config.EndpointNet:
			to = a.To.Prefix.Addr()
		case config.EndpointDevice:
			to = deviceAddr(pol, a.To.Name)
		case config.EndpointZone:
			// Multicast goes to the sender's own zone.
			to = netip.MustParseAddr("224.0.0.251")
			if from.Is6() {
				to = netip.MustParseAddr("ff02::fb")
			}
		default:
			continue
		}
		if !from.IsValid() || !to.IsValid() || from.Is4() != to.Is4() {
			continue
		}
		s := a.Services[0]
		q := engine.Query{From: from, To: to, Proto: s.Proto, DPort: s.PortLo, Size: 60, At: time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)}
		if a.PacketSize != nil {
			q.Size = uint16(a.PacketSize.Min)
		}
		asked++
		tr := eng.ExplainQuery(q)
		if got := tr.Decision.RuleName(pol); got != a.Name || tr.Decision.Verdict != engine.Accept && tr.Decision.Verdict != engine.NeedMore {
			t.Errorf("explain %v %v -> %v %s: %s by %q, want accepted by learned rule %q", from, to, s.Proto, config.FormatService(s), tr.Decision.Verdict, got, a.Name)
		}
	}
	return asked
}

// memberAddr is an address of the first device of group name.
func memberAddr(pol *policy.Policy, name string) netip.Addr {
	for _, d := range pol.Devices {
		for _, g := range d.Groups {
			if pol.Groups[g] == name && len(d.Addrs) > 0 {
				return d.Addrs[0]
			}
		}
	}
	return netip.Addr{}
}

func deviceAddr(pol *policy.Policy, name string) netip.Addr {
	for _, d := range pol.Devices {
		if d.Name == name && len(d.Addrs) > 0 {
			return d.Addrs[0]
		}
	}
	return netip.Addr{}
}

// TestLearnDeterministic learns twice from the same captures: the same
// bytes come out.
func TestLearnDeterministic(t *testing.T) {
	dir := testpcaps.Dir(t)
	var caps []string
	for _, n := range sharedIoT {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			caps = append(caps, filepath.Join(dir, n))
		}
	}
	_, first := learnFrom(t, basePolicy, Options{}, caps...)
	for i := 0; i < 3; i++ {
		if _, again := learnFrom(t, basePolicy, Options{}, caps...); !bytes.Equal(first, again) {
			t.Fatalf("run %d differs:\n%s\n----\n%s", i+2, first, again)
		}
	}
	loadProposal(t, first)
}

// TestLearnEveryRuleHasEvidence checks that every rule and device is
// commented with its evidence, and the summary says what is left out.
func TestLearnEveryRuleHasEvidence(t *testing.T) {
	dir := testpcaps.Dir(t)
	p, text := learnFrom(t, basePolicy, Options{}, filepath.Join(dir, "iot/iotsentinel_hue-bridge_setup.pcap"))
	for _, r := range p.Rules {
		c := strings.Join(r.Comment, "\n")
		for _, want := range []string{"learned from", "first seen", "last seen", "captures: iotsentinel_hue-bridge_setup.pcap", "observed:"} {
			if !strings.Contains(c, want) {
				t.Errorf("rule %s: comment lacks %q:\n%s", r.Allow.Name, want, c)
			}
		}
	}
	if !slices.ContainsFunc(p.Summary, func(s string) bool { return strings.Contains(s, "left out on purpose") }) {
		t.Errorf("summary says nothing of what it leaves out:\n%s", text)
	}
	if !strings.Contains(string(text), "a router") {
		t.Errorf("the capture's router is not named as one:\n%s", text)
	}
}
