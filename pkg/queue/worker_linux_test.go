//go:build linux

package queue

import (
	"context"
	"errors"
	"os"
	"runtime/debug"
	"testing"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

type sent struct {
	id      uint32
	v       verdictKind
	setMark bool
	mark    uint32
}

type fakeSender struct {
	got []sent
	err error
}

func (f *fakeSender) send(id uint32, v verdictKind, setMark bool, mark uint32) error {
	f.got = append(f.got, sent{id, v, setMark, mark})
	return f.err
}

func ptr[T any](v T) *T { return &v }

func TestWorkerHandle(t *testing.T) {
	var seen struct {
		queue   uint16
		payload []byte
		in, out uint32
	}
	h := HandlerFunc(func(q uint16, p []byte, in, out uint32) (bool, uint32) {
		seen.queue, seen.payload, seen.in, seen.out = q, append([]byte(nil), p...), in, out
		return p[9] == unix.IPPROTO_TCP, 0x00020000
	})
	var c counters
	fs := &fakeSender{}
	w := &worker{queue: 3, h: h, mask: 0x00ff0000, c: &c, send: fs}

	tcp := make([]byte, 20)
	tcp[0], tcp[9] = 0x45, unix.IPPROTO_TCP
	udp := append([]byte(nil), tcp...)
	udp[9] = unix.IPPROTO_UDP

	if err := w.handle(nfqueue.Attribute{PacketID: ptr(uint32(10)), Payload: &tcp, InDev: ptr(uint32(4)), OutDev: ptr(uint32(5)), Mark: ptr(uint32(0x3f00))}); err != nil {
		t.Fatal(err)
	}
	if err := w.handle(nfqueue.Attribute{PacketID: ptr(uint32(11)), Payload: &udp}); err != nil {
		t.Fatal(err)
	}
	if err := w.handle(nfqueue.Attribute{}); err != nil { // no packet id: not a packet
		t.Fatal(err)
	}
	if seen.queue != 3 || seen.in != 0 || seen.out != 0 || len(seen.payload) != 20 {
		t.Errorf("handler saw %+v", seen)
	}
	want := []sent{
		{10, verdictAccept, true, 0x00023f00},
		{11, verdictDrop, false, 0},
	}
	if len(fs.got) != len(want) || fs.got[0] != want[0] || fs.got[1] != want[1] {
		t.Fatalf("verdicts = %+v, want %+v", fs.got, want)
	}
	if st := c.snapshot(); st != (Stats{Received: 2, Accepted: 1, Dropped: 1}) {
		t.Fatalf("stats = %+v", st)
	}

	fs.err = errors.New("socket closed")
	if err := w.handle(nfqueue.Attribute{PacketID: ptr(uint32(12)), Payload: &tcp}); err == nil {
		t.Fatal("send error not reported")
	}
	if c.verdictErrors.Load() != 1 {
		t.Fatalf("verdict errors = %d", c.verdictErrors.Load())
	}
}

func TestOnReadError(t *testing.T) {
	var c counters
	var failed []error
	fail := func(err error) { failed = append(failed, err) }
	ctx, cancel := context.WithCancel(context.Background())

	enobufs := &netlink.OpError{Op: "receive", Err: os.NewSyscallError("recvmsg", unix.ENOBUFS)}
	if got := onReadError(ctx, enobufs, &c, fail); got != 0 {
		t.Errorf("ENOBUFS: returned %d, want 0 (keep reading)", got)
	}
	if c.enobufs.Load() != 1 || len(failed) != 0 {
		t.Errorf("ENOBUFS: counted %d, failed %v", c.enobufs.Load(), failed)
	}
	ebadf := &netlink.OpError{Op: "receive", Err: os.NewSyscallError("recvmsg", unix.EBADF)}
	if got := onReadError(ctx, ebadf, &c, fail); got == 0 || len(failed) != 1 {
		t.Errorf("EBADF: returned %d, failed %v; want stop and re-open", got, failed)
	}
	cancel()
	if got := onReadError(ctx, ebadf, &c, fail); got == 0 || len(failed) != 1 {
		t.Errorf("after cancel: returned %d, failed %v; want a quiet stop", got, failed)
	}
}

// TestNetlinkVersion guards against github.com/mdlayher/netlink v1.11.0,
// which breaks go-nfqueue: it rejects unaligned messages and blocks a Send
// while another goroutine waits in Receive.
func TestNetlinkVersion(t *testing.T) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Skip("no build info")
	}
	for _, m := range bi.Deps {
		if m.Path == "github.com/mdlayher/netlink" {
			if m.Replace != nil {
				m = m.Replace
			}
			t.Logf("mdlayher/netlink %s", m.Version)
			if m.Version == "v1.11.0" {
				t.Fatalf("mdlayher/netlink %s is known to break NFQUEUE; pin v1.9.0 or a fixed release", m.Version)
			}
		}
	}
}
