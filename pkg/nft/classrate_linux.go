//go:build linux

package nft

import (
	"fmt"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// A class's new-flow rate in the kernel (Class.NewFlows).
//
// A new flow has no class until userspace judged its first packet, so the
// kernel cannot tell the class of most openings. It can tell it for the
// ones that repeat an accepted opening: when a verdict accepts a flow of a
// class with a rate, the verdict chain records the flow's source address,
// peer, protocol and destination port in the class's "opened" set (for a
// minute, refreshed by each such verdict). A later new flow with the same
// four (a device reconnecting, retrying, hammering one service from new
// source ports) is then counted in the kernel against its source's budget
// for the class, `limit rate over N/period burst N`, and over it dropped
// without reaching the queue (counted as class_rate_dropped).
//
// Everything under the budget still reaches userspace, which judges the
// rate on every new flow of the rule, the repeated ones included. The
// kernel counts only openings userspace counts too (one class per rule
// with a rate: see policy.Class), at the same rate and burst, so a device
// that keeps within its rule's rate is never dropped here. The kernel's
// budget is per source address, userspace's per device: a device with
// several addresses gets more from the kernel, not less. Flows of other protocols than TCP and
// UDP, and first openings of a service, are left to userspace.
type rateFamily struct {
	name     string
	nfproto  byte
	addrLen  uint32
	saddrOff uint32
	daddrOff uint32
	addrType nftables.SetDatatype
}

var rateFamilies = [...]rateFamily{
	{"4", unix.NFPROTO_IPV4, 4, 12, 16, nftables.TypeIPAddr},
	{"6", unix.NFPROTO_IPV6, 16, 8, 24, nftables.TypeIP6Addr},
}

// rateProtos are the protocols whose openings the kernel classifies: the
// ones with a destination port.
var rateProtos = [...]byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP}

const (
	chainClassRate = "classrate"
	// openedTimeout is how long an accepted opening is remembered after
	// the last verdict that accepted one like it.
	openedTimeout = time.Minute
	// setIDClassRate is the first set ID of the rate sets: four per class
	// (opened and rate, IPv4 and IPv6), after the bridge table's IDs.
	setIDClassRate = 100
)

func openedSetName(c int, f *rateFamily) string { return fmt.Sprintf("opened%s_%d", f.name, c) }
func rateSetName(c int, f *rateFamily) string   { return fmt.Sprintf("rate%s_%d", f.name, c) }

func openedSetID(c, fi int) uint32 { return uint32(setIDClassRate + 4*c + 2*fi) }
func rateSetID(c, fi int) uint32   { return openedSetID(c, fi) + 1 }

// rateClasses lists the classes with a rate the mark field can hold.
func rateClasses(o Options) []int {
	var out []int
	for c := range o.Classes {
		if o.Classes[c].NewFlows > 0 && c < o.Marks.MaxClasses() {
			out = append(out, c)
		}
	}
	return out
}

// addClassRateSets adds the sets of each class with a rate and the chain
// that checks new flows against them; it must come before the rules that
// refer to them.
func addClassRateSets(nl *nftables.Conn, t *nftables.Table, o Options) {
	classes := rateClasses(o)
	if len(classes) == 0 {
		return
	}
	for _, c := range classes {
		cl := &o.Classes[c]
		for fi := range rateFamilies {
			f := &rateFamilies[fi]
			key := nftables.MustConcatSetType(f.addrType, f.addrType, nftables.TypeInetProto, nftables.TypeInetService)
			_ = nl.AddSet(&nftables.Set{Table: t, ID: openedSetID(c, fi), Name: openedSetName(c, f), KeyType: key, Concatenation: true,
				Dynamic: true, HasTimeout: true, Timeout: openedTimeout, Size: guardSize}, nil)
			_ = nl.AddSet(&nftables.Set{Table: t, ID: rateSetID(c, fi), Name: rateSetName(c, f), KeyType: f.addrType,
				Dynamic: true, HasTimeout: true, Timeout: max(2*cl.NewFlowPer, time.Minute), Size: guardSize}, nil)
		}
	}
	nl.AddChain(&nftables.Chain{Name: chainClassRate, Table: t})
}

// classRateJump sends new flows through the class rate chain (`ct state
// new jump classrate`), when a class has a rate.
func classRateJump(o Options) []rule {
	if len(rateClasses(o)) == 0 {
		return nil
	}
	return []rule{{"", concat(ctStateIs(expr.CtStateBitNEW), &expr.Verdict{Kind: expr.VerdictJump, Chain: chainClassRate})}}
}

// openingKey loads source, peer, protocol and destination port into the
// registers from reg32x0 on, as the opened sets key them; the caller has
// matched the family and protocol.
func openingKey(f *rateFamily) []expr.Any {
	words := f.addrLen / 4
	return []expr.Any{
		&expr.Payload{DestRegister: reg32x0, Base: expr.PayloadBaseNetworkHeader, Offset: f.saddrOff, Len: f.addrLen},
		&expr.Payload{DestRegister: reg32x0 + words, Base: expr.PayloadBaseNetworkHeader, Offset: f.daddrOff, Len: f.addrLen},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32x0 + 2*words},
		&expr.Payload{DestRegister: reg32x0 + 2*words + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	}
}

func familyAndProto(f *rateFamily, proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.nfproto}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

// openingRules, in the verdict chain, record each opening a verdict
// accepts into a class with a rate: `meta mark & mask == class-c ct
// direction original ... update @opened4_c { ip saddr . ip daddr . meta
// l4proto . th dport }`. Only the original direction: a verdict given on a
// reply says nothing of what the responder may open.
func openingRules(o Options) []rule {
	var rules []rule
	for _, c := range rateClasses(o) {
		for fi := range rateFamilies {
			f := &rateFamilies[fi]
			for _, proto := range rateProtos {
				rules = append(rules, rule{"", concat(
					metaMarkField(o.Marks),
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: nativeU32(o.Marks.Accepted(uint16(c)))},
					&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}}, // IP_CT_DIR_ORIGINAL
					familyAndProto(f, proto),
					openingKey(f),
					&expr.Dynset{SrcRegKey: reg32x0, SetName: openedSetName(c, f), SetID: openedSetID(c, fi), Operation: unix.NFT_DYNSET_OP_UPDATE},
				)})
			}
		}
	}
	return rules
}

// classRateRules are the rules of the classrate chain: a new flow that
// repeats an opening of class c counts against its source's budget for
// the class, and over it is dropped: `... @opened4_c add @rate4_c { ip
// saddr limit rate over N/unit burst N packets } drop`.
func classRateRules(o Options) []rule {
	var rules []rule
	for _, c := range rateClasses(o) {
		cl := &o.Classes[c]
		for fi := range rateFamilies {
			f := &rateFamilies[fi]
			for _, proto := range rateProtos {
				rules = append(rules, rule{fmt.Sprintf("class %d: new flows over %d per %v", c, cl.NewFlows, cl.NewFlowPer), concat(
					familyAndProto(f, proto),
					openingKey(f),
					&expr.Lookup{SourceRegister: reg32x0, SetName: openedSetName(c, f), SetID: openedSetID(c, fi)},
					&expr.Payload{DestRegister: reg32x0, Base: expr.PayloadBaseNetworkHeader, Offset: f.saddrOff, Len: f.addrLen},
					&expr.Dynset{SrcRegKey: reg32x0, SetName: rateSetName(c, f), SetID: rateSetID(c, fi), Operation: unix.NFT_DYNSET_OP_ADD,
						Exprs: []expr.Any{rateLimit(cl.NewFlows, cl.NewFlowPer)}},
					counterRef(counterClassRate),
					&expr.Verdict{Kind: expr.VerdictDrop},
				)})
			}
		}
	}
	return rules
}

// rateLimit is `limit rate over n/per burst n packets` in the finest unit
// that holds the rate as a whole number, rounded up where none does (the
// kernel may be a little more lenient than userspace, never stricter).
func rateLimit(n uint32, per time.Duration) *expr.Limit {
	units := []struct {
		unit expr.LimitTime
		d    time.Duration
	}{{expr.LimitTimeSecond, time.Second}, {expr.LimitTimeMinute, time.Minute}, {expr.LimitTimeHour, time.Hour}, {expr.LimitTimeDay, 24 * time.Hour}}
	per = max(per, time.Millisecond)
	for _, u := range units {
		if num := uint64(n) * uint64(u.d); num%uint64(per) == 0 && num/uint64(per) >= 1 {
			return &expr.Limit{Type: expr.LimitTypePkts, Rate: num / uint64(per), Over: true, Unit: u.unit, Burst: n}
		}
	}
	day := uint64(24 * time.Hour)
	rate := (uint64(n)*day + uint64(per) - 1) / uint64(per)
	return &expr.Limit{Type: expr.LimitTypePkts, Rate: max(rate, 1), Over: true, Unit: expr.LimitTimeDay, Burst: n}
}

// ForgetOpenings empties the classes' opened sets. A reload calls it: the
// openings a rule accepted before may belong to another rule, or none,
// under the new policy, and must not be counted against the old one's
// rate.
func (r *Ruleset) ForgetOpenings() error {
	classes := rateClasses(r.opts)
	if len(classes) == 0 {
		return nil
	}
	for _, c := range classes {
		for fi := range rateFamilies {
			r.conn.nl.FlushSet(&nftables.Set{Table: r.table, Name: openedSetName(c, &rateFamilies[fi])})
		}
	}
	if err := r.conn.nl.Flush(); err != nil {
		return fmt.Errorf("nft: forget the accepted openings: %w", err)
	}
	return nil
}
