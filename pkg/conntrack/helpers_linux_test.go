//go:build linux

package conntrack

import (
	"testing"

	"github.com/picoseg/picoseg/internal/testnetns"
)

// clientServer skips the test unless it runs as root, and makes two
// namespaces named for prefix, linked by a veth pair: the client at
// 192.0.2.1, the server at 192.0.2.2, whose table the tests read.
func clientServer(t *testing.T, prefix string) (client, server testnetns.NS) {
	t.Helper()
	testnetns.NeedRoot(t)
	client, server = testnetns.New(t, prefix+"c"), testnetns.New(t, prefix+"s")
	testnetns.Link(t, client, "c0", "192.0.2.1/24", server, "s0", "192.0.2.2/24")
	return client, server
}

// openIn opens the conntrack table of ns, closed with the test.
func openIn(t *testing.T, ns testnetns.NS) *Conn {
	t.Helper()
	c, err := Open(WithNetNS(ns.FD))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
