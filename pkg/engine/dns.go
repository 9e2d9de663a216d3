package engine

import (
	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/dnsnames"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// dnsPort is where resolvers listen.
const dnsPort = 53

// Names returns the table of names DNS answers gave each device.
func (e *Engine) Names() *dnsnames.Table { return e.names }

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
	if p.Proto != packet.ProtoUDP || (p.DstPort != dnsPort && p.SrcPort != dnsPort) || !g.policy.UsesDNS() {
		return d
	}
	if d.Verdict == Drop || (d.Verdict == Accept && d.WouldDrop) {
		return d
	}
	m := &w.dns
	err := m.Parse(p.Payload)
	if p.DstPort == dnsPort {
		if err == nil && !m.Header.Response() && m.Header.Opcode() == 0 {
			g.names.Query(dnsnames.Query{Client: p.Src.Unmap(), Resolver: p.Dst.Unmap(), ClientPort: p.SrcPort, ResolverPort: p.DstPort, ID: m.Header.ID},
				dnsnames.Hash(m.Question.Bytes()), now)
		}
		return d
	}
	q := dnsnames.Query{Client: p.Dst.Unmap(), Resolver: p.Src.Unmap(), ClientPort: p.DstPort, ResolverPort: p.SrcPort, ID: m.Header.ID}
	if err != nil || !m.Header.Response() || !g.names.Answer(q, dnsnames.Hash(m.Question.Bytes()), now) {
		return w.unsolicitedDNS(g, p, now, d)
	}
	if m.NAddrs == 0 {
		return d
	}
	name := dnsnames.MakeName(m.Question.Bytes())
	for _, a := range m.Addrs[:m.NAddrs] {
		addr := a.Addr.Unmap()
		if g.policy.LocalZoneOf(addr) != policy.None || g.policy.IsGateway(addr) || !addr.IsGlobalUnicast() {
			continue
		}
		g.names.Record(q.Client, addr, &name, a.TTL, now)
	}
	return d
}

// unsolicitedDNS drops a message from port 53 that answers no outstanding
// query. The drop is the packet's alone (PacketOnly): a forged answer on
// the tuple of a real query must not cut the real one.
func (w *Worker) unsolicitedDNS(g *generation, p *packet.Packet, now int64, d Decision) Decision {
	d.Verdict, d.Reason, d.PacketOnly = Drop, ReasonDNSUnsolicited, true
	layer := d.Layer
	if layer < LayerMicro {
		layer = LayerMicro
	}
	d.Layer = layer
	w.e.stats.Verdicts[d.Layer][Drop].Add(1)
	w.e.raise(Event{Type: EventDeny, Time: now, Layer: d.Layer, Reason: d.Reason, Src: p.Src, Dst: p.Dst, Proto: p.Proto, SPort: p.SrcPort, DPort: p.DstPort,
		Device: g.policy.DeviceName(g.policy.DeviceByAddr(p.Dst.Unmap()))})
	if g.policy.Mode == config.ModeMonitor {
		d.Verdict, d.WouldDrop = Accept, true
	}
	return d
}
