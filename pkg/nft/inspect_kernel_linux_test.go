//go:build linux

package nft

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"
)

// inspectingPath is a data path whose TCP flows to the echo port are marked
// Inspecting from their first packet, as the daemon's verdict would, with
// the queue bypassed: the queued counter tells what the kernel sent to
// userspace, and everything still reaches its end. The client sends no
// TCP options after the handshake (no timestamps), so its bare ACKs are
// 40 bytes and a segment of 12 bytes of data is 52: the length of a bare
// ACK with timestamps.
func inspectingPath(t *testing.T) (*dataPath, Marks, net.Conn) {
	t.Helper()
	m := Marks{Mask: dpMask}
	d := newDataPath(t, Options{Marks: m})
	d.client.Run(t, "sysctl", "-qw", "net.ipv4.tcp_timestamps=0")
	echoServer(t, d.server, dpEchoTCP)
	d.markFlows(t, dpEchoTCP, m.Inspecting())
	c := dialFrom(t, d.client, fmt.Sprintf("%s:%d", dpServer, dpEchoTCP))
	roundTrip(t, c, 12)
	if st, _ := m.Decode(d.ctMarkOf(t, dpEchoTCP)); st != StateInspecting {
		t.Fatalf("conntrack mark says %v, want inspecting", st)
	}
	return d, m, c
}

// TestKernelInspectingQueuesOnlyPayload: on a flow under inspection only
// the opener's segments with data reach the queue; the responder's
// segments (its echo of the data) and the opener's bare ACKs stay in the
// kernel. Each client segment of 12 bytes, as long as a bare ACK with
// timestamps, is queued: the length alone does not make a bare ACK.
func TestKernelInspectingQueuesOnlyPayload(t *testing.T) {
	d, _, c := inspectingPath(t)
	time.Sleep(100 * time.Millisecond) // the client's delayed ACK of the echo
	before := d.counters(t).Queued.Packets
	const rounds = 4
	for range rounds {
		roundTrip(t, c, 12)
	}
	time.Sleep(100 * time.Millisecond)
	if got := d.counters(t).Queued.Packets - before; got != rounds {
		t.Fatalf("%d packets queued for %d client segments of 12 bytes (and their echoes and ACKs), want exactly %d", got, rounds, rounds)
	}
}

// TestKernelInspectingRepliesAreBounded: a responder that keeps talking to
// a flow that is never identified reaches the queue again after
// inspectPackets packets of the connection, where the engine's budget
// cuts such a flow.
func TestKernelInspectingRepliesAreBounded(t *testing.T) {
	d, _, c := inspectingPath(t)
	const rounds = inspectPackets
	before := d.counters(t).Queued.Packets
	for range rounds {
		roundTrip(t, c, 12)
	}
	if got := d.counters(t).Queued.Packets - before; got <= rounds {
		t.Fatalf("%d packets queued for %d round trips past the bound, want the echoes too", got, rounds)
	}
}

// TestKernelInspectingReplySYN: a SYN from the responder on the flow's
// tuple (opening the other way) is never passed as a reply: conntrack
// finds it invalid on an established connection, or the SYN rule queues
// it.
func TestKernelInspectingReplySYN(t *testing.T) {
	d, _, c := inspectingPath(t)
	_, port, _ := net.SplitHostPort(c.LocalAddr().String())
	before := d.counters(t)
	hping(t, d.server, "-S", "-c", "1", "-s", strconv.Itoa(dpEchoTCP), "-k", "-p", port, dpClient)
	after := d.counters(t)
	q, inv := after.Queued.Packets-before.Queued.Packets, after.InvalidDropped.Packets-before.InvalidDropped.Packets
	t.Logf("a SYN from the responder: %d queued, %d dropped invalid", q, inv)
	if q+inv != 1 {
		t.Fatalf("a SYN from the responder: %d queued, %d dropped invalid; want one of them", q, inv)
	}
}

// TestKernelInspectingRecordedFromOpenerOnly: the verdict chain records an
// Inspecting packet mark in the flow's conntrack mark only from a packet in
// conntrack's original direction: one in the reply direction (the side the
// kernel passes unread) leaves the flow unjudged. The marks are set here by
// a chain between picoseg's filter and verdict chains, where a verdict's
// mark would be.
func TestKernelInspectingRecordedFromOpenerOnly(t *testing.T) {
	for _, tc := range []struct {
		match string
		want  State
	}{
		{"tcp sport", StateUnjudged},   // the responder's packets
		{"tcp dport", StateInspecting}, // control: the opener's
	} {
		t.Run(tc.match, func(t *testing.T) {
			m := Marks{Mask: dpMask}
			d := newDataPath(t, Options{Marks: m})
			nftFile(t, d.gw, fmt.Sprintf(`table inet verdicts {
	chain forward {
		type filter hook forward priority filter + 5; policy accept;
		%s %d meta mark set meta mark | %#x
	}
}
`, tc.match, dpEchoTCP, m.Inspecting()))
			echoServer(t, d.server, dpEchoTCP)
			roundTrip(t, dialFrom(t, d.client, fmt.Sprintf("%s:%d", dpServer, dpEchoTCP)), 12)
			if st, _ := m.Decode(d.ctMarkOf(t, dpEchoTCP)); st != tc.want {
				t.Fatalf("Inspecting on packets matching %q: conntrack mark says %v, want %v", tc.match, st, tc.want)
			}
		})
	}
}
