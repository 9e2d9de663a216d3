//go:build linux

package conntrack

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestKernelAccounting turns flow accounting on in a fresh namespace only,
// moves a known number of bytes each way over TCP and checks the dumped
// counters against them.
func TestKernelAccounting(t *testing.T) {
	client, server := clientServer(t, "picoseg-ac")
	server.Run(t, "nft", "add table inet track; add chain inet track in { type filter hook input priority 0; ct state established counter; }")

	hostBefore, hostErr := os.ReadFile(accountingSysctl)
	var nsValue []byte
	server.Do(t, func() {
		if err := EnableAccounting(); err != nil {
			t.Error(err)
			return
		}
		var err error
		if nsValue, err = os.ReadFile(accountingSysctl); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	if strings.TrimSpace(string(nsValue)) != "1" {
		t.Fatalf("nf_conntrack_acct in the namespace = %q, want 1", nsValue)
	}
	if hostAfter, err := os.ReadFile(accountingSysctl); hostErr == nil && (err != nil || string(hostAfter) != string(hostBefore)) {
		t.Fatalf("host nf_conntrack_acct changed from %q to %q (%v): EnableAccounting must stay in its namespace", hostBefore, hostAfter, err)
	}

	const up, down = 3000, 700
	ln := server.Listen(t, "tcp4", "192.0.2.2:8081")
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		if _, err := io.ReadFull(c, make([]byte, up)); err != nil {
			served <- err
			return
		}
		_, err = c.Write(make([]byte, down))
		served <- err
	}()
	conn := client.Dial(t, "tcp4", "192.0.2.2:8081")
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(make([]byte, up)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, make([]byte, down)); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}

	c := openIn(t, server)
	flows, err := c.Flows(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	var got *Flow
	for i := range flows {
		if f := flows[i]; f.Proto == unix.IPPROTO_TCP && f.SrcPort == local.Port() && f.DstPort == 8081 {
			got = &flows[i]
		}
	}
	if got == nil {
		t.Fatalf("TCP flow not in the conntrack table: %v", flows)
	}
	// Every packet carries at least 40 bytes of IPv4 and TCP headers, and
	// at most 60 + 40 of options; the payload sizes are exact.
	check := func(dir string, packets, bytes uint64, payload uint64) {
		t.Helper()
		if packets == 0 || bytes < payload+40*packets || bytes > payload+100*packets {
			t.Errorf("%s: %d packets, %d bytes; want about %d payload bytes", dir, packets, bytes, payload)
		}
	}
	check("original", got.OrigPackets, got.OrigBytes, up)
	check("reply", got.ReplyPackets, got.ReplyBytes, down)
}
