package engine

import (
	"net/netip"

	"github.com/picoseg/picoseg/pkg/appid"
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/dnsnames"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// NamesLen returns how many devices, addresses and outstanding queries
// the table of names DNS answers gave devices holds.
func (e *Engine) NamesLen() (devices, addrs, queries int) { return e.names.Len() }

// observeDNS reads the DNS messages of a policy with "dns:" destinations,
// after the packet's own verdict d:
//
//   - an accepted query (to port 53) is kept as outstanding: who asked
//     which resolver, from which port, with which identifier, for which
//     name;
//   - an answer (from port 53) is taken only as the answer to such a
//     query of its destination, once; its addresses for the question
//     name (through CNAMEs) are then recorded for that device alone.
//     Anything else from port 53 (an answer to no query, a second answer,
//     one from another resolver or port, a message that is no answer) is
//     dropped, alone: the flow it claims to belong to keeps its verdict.
//
// The answer is recorded before its verdict is returned, so the device
// cannot connect to an address before the table holds it: the kernel
// holds the answer until then. Addresses in the policy's local zones and
// the gateway's own are not recorded: an answer that points a cloud name
// at a LAN host (DNS rebinding) opens nothing.
func (w *Worker) observeDNS(g *generation, p *packet.Packet, now int64, d Decision) Decision {
	pol := g.policy
	if p.Proto != packet.ProtoUDP || (p.DstPort != dnsnames.Port && p.SrcPort != dnsnames.Port) || !(pol.UsesDNS() || pol.HasDNSChecks()) {
		return d
	}
	if d.Verdict == Drop || (d.Verdict == Accept && d.WouldDrop) {
		return d
	}
	m := &w.dns
	err := m.Parse(p.Payload)
	q := dnsnames.MessageQuery(p.Src, p.Dst, p.SrcPort, p.DstPort, m.Header.ID)
	if p.DstPort == dnsnames.Port {
		if !d.Reply && !w.admitQuery(g, p, now, d) {
			return w.dropDNS(g, p, now, d, ReasonDNSQueryRate)
		}
		if pol.UsesDNS() && err == nil && !m.Header.Response() && m.Header.Opcode() == 0 {
			g.names.Query(q, dnsnames.Hash(m.Question.Bytes()), now)
		}
		return d
	}
	if !pol.UsesDNS() {
		return d
	}
	if err != nil || !m.Header.Response() || !g.names.Answer(q, dnsnames.Hash(m.Question.Bytes()), now) {
		return w.dropDNS(g, p, now, d, ReasonDNSUnsolicited)
	}
	if m.NAddrs == 0 {
		return d
	}
	name := dnsnames.MakeName(m.Question.Bytes())
	for _, a := range m.Addrs[:m.NAddrs] {
		if addr := a.Addr.Unmap(); pol.Nameable(addr) {
			g.names.Record(q.Client, addr, &name, a.TTL, now)
		}
	}
	return d
}

// admitQuery counts a query against its rule's per-device query rate
// ([allow.dns] rate), when the rule has one. The device is the policy's
// device when known, else the sender's address.
func (w *Worker) admitQuery(g *generation, p *packet.Packet, now int64, d Decision) bool {
	if d.Layer != LayerPico && d.Layer != LayerMicro {
		return true
	}
	chk := g.policy.DNSChecker(d.Rule)
	if chk == nil {
		return true
	}
	k := appid.DeviceKey{Device: d.SrcDevice, Addr: p.Src.Unmap()}
	if d.SrcDevice >= 0 {
		k.Addr = netip.Addr{}
	}
	return chk.AdmitQuery(k, now)
}

// dropDNS drops a DNS message: an answer to no outstanding query, or a
// query over its device's rate. The drop is the packet's alone
// (PacketOnly): a forged answer on the tuple of a real query must not cut
// the real one, and a query over the rate does not end the device's
// resolver socket.
func (w *Worker) dropDNS(g *generation, p *packet.Packet, now int64, d Decision, reason Reason) Decision {
	d.Verdict, d.Reason, d.PacketOnly = Drop, reason, true
	layer := d.Layer
	if layer < LayerMicro {
		layer = LayerMicro
	}
	d.Layer = layer
	w.e.stats.Verdicts[d.Layer][Drop].Add(1)
	ev := EventDeny
	if reason == ReasonDNSQueryRate {
		ev = EventAppDenied
	}
	w.e.raise(Event{Type: ev, Time: now, Layer: d.Layer, Reason: d.Reason, Src: p.Src, Dst: p.Dst, Proto: p.Proto, SPort: p.SrcPort, DPort: p.DstPort,
		Device: g.policy.DeviceName(d.SrcDevice)})
	if g.policy.Mode == config.ModeMonitor {
		d.Verdict, d.WouldDrop = Accept, true
	}
	return d
}

// nameWindow is how long past their TTL the names a flow is judged by
// stay valid: for a new flow the policy's grace; for a flow judged again
// (a reload, its conntrack entry) the running-flow horizon, so that a
// flow opened under a valid answer lives on.
func nameWindow(c *Context) policy.NameWindow {
	if c.Existing {
		return policy.RunningFlowNames
	}
	return policy.NewFlowNames
}
