//go:build linux

package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/picoseg/picoseg/internal/netns"
	"github.com/picoseg/picoseg/internal/nlwalk"
)

// The nfnetlink_queue protocol, as far as the adapter speaks it
// (include/uapi/linux/netfilter/nfnetlink_queue.h). The adapter talks to the
// kernel over a raw netlink socket rather than through a general netlink
// library: the receive path then reads many packets per system call into
// buffers it owns, and sends all their verdicts in one write, without
// allocating per packet.
const (
	nfnlSubsysQueue = 3

	msgPacket       = nfnlSubsysQueue<<8 | 0 // NFQNL_MSG_PACKET
	msgVerdict      = nfnlSubsysQueue<<8 | 1 // NFQNL_MSG_VERDICT
	msgConfig       = nfnlSubsysQueue<<8 | 2 // NFQNL_MSG_CONFIG
	msgVerdictBatch = nfnlSubsysQueue<<8 | 3 // NFQNL_MSG_VERDICT_BATCH

	attrPacketHdr  = 1  // NFQA_PACKET_HDR
	attrVerdictHdr = 2  // NFQA_VERDICT_HDR
	attrMark       = 3  // NFQA_MARK
	attrInDev      = 5  // NFQA_IFINDEX_INDEV
	attrOutDev     = 6  // NFQA_IFINDEX_OUTDEV
	attrPhysInDev  = 7  // NFQA_IFINDEX_PHYSINDEV
	attrHwAddr     = 9  // NFQA_HWADDR
	attrPayload    = 10 // NFQA_PAYLOAD
	attrSkbInfo    = 14 // NFQA_SKB_INFO
	skbGSO         = 2  // NFQA_SKB_GSO: the packet is several segments merged (GRO)

	attrCfgCmd    = 1 // NFQA_CFG_CMD
	attrCfgParams = 2 // NFQA_CFG_PARAMS
	attrCfgMaxLen = 3 // NFQA_CFG_QUEUE_MAXLEN
	attrCfgMask   = 4 // NFQA_CFG_MASK
	attrCfgFlags  = 5 // NFQA_CFG_FLAGS

	cfgCmdBind  = 1 // NFQNL_CFG_CMD_BIND
	copyPacket  = 2 // NFQNL_COPY_PACKET
	cfgFailOpen = 0x1
	cfgGSO      = 0x4

	nfDrop   = 0
	nfAccept = 1

	nlmsgHdrLen = 16
	nfgenLen    = 4
)

// verdictMsgLen is a verdict message: header, nfgenmsg, NFQA_VERDICT_HDR
// (4+8) and, with a mark, NFQA_MARK (4+4).
const (
	verdictMsgLen     = nlmsgHdrLen + nfgenLen + 12
	verdictMarkMsgLen = verdictMsgLen + 8
)

func align4(n int) int { return (n + 3) &^ 3 }

// appendVerdict appends one verdict message for queue: a plain verdict for
// packet id, or with batch a verdict for every packet of the queue whose ID
// is id or lower (NFQNL_MSG_VERDICT_BATCH).
func appendVerdict(b []byte, queue uint16, batch bool, id uint32, v verdictKind, setMark bool, mark uint32) []byte {
	n := verdictMsgLen
	if setMark {
		n = verdictMarkMsgLen
	}
	typ := uint16(msgVerdict)
	if batch {
		typ = msgVerdictBatch
	}
	kv := uint32(nfDrop)
	if v == verdictAccept {
		kv = nfAccept
	}
	ne, be := binary.NativeEndian, binary.BigEndian
	b = ne.AppendUint32(b, uint32(n))
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, unix.NLM_F_REQUEST)
	b = ne.AppendUint32(b, 0) // sequence
	b = ne.AppendUint32(b, 0) // port ID: the kernel fills it in
	b = append(b, unix.AF_UNSPEC, 0)
	b = be.AppendUint16(b, queue)
	b = ne.AppendUint16(b, 12)
	b = ne.AppendUint16(b, attrVerdictHdr)
	b = be.AppendUint32(b, kv)
	b = be.AppendUint32(b, id)
	if setMark {
		b = ne.AppendUint16(b, 8)
		b = ne.AppendUint16(b, attrMark)
		b = be.AppendUint32(b, mark)
	}
	return b
}

// configMsg returns the message that binds queue and sets its copy mode,
// length and flags in one go, asking for an acknowledgement.
func configMsg(queue uint16, seq uint32, copyRange, maxLen, flags uint32) []byte {
	ne, be := binary.NativeEndian, binary.BigEndian
	attr := func(b []byte, typ uint16, data []byte) []byte {
		b = ne.AppendUint16(b, uint16(4+len(data)))
		b = ne.AppendUint16(b, typ)
		b = append(b, data...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	var body []byte
	body = append(body, unix.AF_UNSPEC, 0)
	body = be.AppendUint16(body, queue)
	// struct nfqnl_msg_config_cmd { u8 command; u8 pad; be16 pf; }: pf is
	// ignored by kernels since 3.8; one bind serves both families.
	body = attr(body, attrCfgCmd, []byte{cfgCmdBind, 0, 0, unix.AF_INET})
	// struct nfqnl_msg_config_params { be32 copy_range; u8 copy_mode; }
	body = attr(body, attrCfgParams, append(be.AppendUint32(nil, copyRange), copyPacket))
	if maxLen > 0 {
		body = attr(body, attrCfgMaxLen, be.AppendUint32(nil, maxLen))
	}
	body = attr(body, attrCfgMask, be.AppendUint32(nil, cfgFailOpen|cfgGSO))
	body = attr(body, attrCfgFlags, be.AppendUint32(nil, flags))
	b := ne.AppendUint32(nil, uint32(nlmsgHdrLen+len(body)))
	b = ne.AppendUint16(b, msgConfig)
	b = ne.AppendUint16(b, unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 0)
	return append(b, body...)
}

// packetMsg is what the adapter reads from one NFQNL_MSG_PACKET.
type packetMsg struct {
	id      uint32
	hasID   bool
	mark    uint32
	in, out uint32
	physIn  uint32
	hwaddr  []byte
	payload []byte
	gso     bool
}

// parsePacket reads the attributes of a packet message (after the netlink
// header). Unknown attributes are skipped; a truncated attribute ends the
// parse with what was read so far.
func parsePacket(b []byte, p *packetMsg) {
	*p = packetMsg{}
	if len(b) < nfgenLen {
		return
	}
	be := binary.BigEndian
	a := nlwalk.NewAttrs(b[nfgenLen:])
	for a.Next() {
		data := a.Data()
		switch a.Type() {
		case attrPacketHdr:
			p.id, p.hasID = a.Uint32()
		case attrMark:
			p.mark, _ = a.Uint32()
		case attrInDev:
			p.in, _ = a.Uint32()
		case attrOutDev:
			p.out, _ = a.Uint32()
		case attrPhysInDev:
			p.physIn, _ = a.Uint32()
		case attrHwAddr:
			// struct nfqnl_msg_packet_hw { be16 hw_addrlen; u16 pad; u8 hw_addr[8]; }
			if len(data) >= 4 {
				if n := int(be.Uint16(data)); n <= 8 && 4+n <= len(data) {
					p.hwaddr = data[4 : 4+n]
				}
			}
		case attrPayload:
			p.payload = data
		case attrSkbInfo:
			info, _ := a.Uint32()
			p.gso = info&skbGSO != 0
		}
	}
	if typ, data, ok := a.Cut(); ok && typ == attrPayload {
		p.payload = data // cut short by the read buffer: judge what came
	}
}

// nlConn is a netfilter netlink socket in blocking mode, outside the Go
// runtime's poller: a reader that finds it empty sleeps in the kernel, in
// its system call, as a C consumer sleeps in recv. Through the poller every
// packet of a queue that keeps emptying (one device's new flows: one packet
// per read) cost a read that found nothing, the goroutine's park, the
// scheduler's search for other work and an epoll_wait before the read that
// got it; a blocking read costs one system call. The runtime knows the
// thread is in a system call (Syscall, not RawSyscall), so it neither
// preempts the goroutine nor holds up the other goroutines: its P is handed
// to them when they need it.
//
// A blocked read does not end when the socket is closed, so reads time out
// (readTimeout) and the reader then sees the socket closed.
type nlConn struct {
	f  *os.File
	rc syscall.RawConn
	// The write in progress: write's argument and results, and the
	// function that does it, made once (see newRecvBatch: a closure
	// passed to RawConn.Write escapes, and one made per write would
	// allocate on every batch of verdicts).
	wb     []byte
	wn     int
	werr   error
	writeF func(fd uintptr) bool
}

var _ verdictSender = (*nlConn)(nil)

// dialNetfilter opens a netfilter netlink socket in the network namespace
// netns refers to (0: the caller's).
func dialNetfilter(netns int) (*nlConn, error) {
	fd, err := socketIn(netns)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	tv := unix.NsecToTimeval(readTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
	}
	f := os.NewFile(uintptr(fd), "nfqueue")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	c := &nlConn{f: f, rc: rc}
	c.writeF = func(fd uintptr) bool {
		c.wn, c.werr = rawWrite(fd, c.wb)
		return true
	}
	return c, nil
}

func socketIn(ns int) (int, error) {
	open := func() (int, error) {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		return fd, os.NewSyscallError("socket", err)
	}
	if ns == 0 {
		return open()
	}
	// A socket belongs to the namespace of the thread that creates it.
	fd := -1
	err := netns.Do(ns, func() (err error) {
		fd, err = open()
		return err
	})
	return fd, err
}

// readTimeout bounds a blocking read: how long a reader may take to notice
// that its socket was closed.
const readTimeout = 100 * time.Millisecond

// close closes the socket; a reader blocked on it returns within
// readTimeout.
func (c *nlConn) close() error { return c.f.Close() }

// setRecvBuffer sets the receive buffer past net.core.rmem_max when the
// process may (SO_RCVBUFFORCE needs CAP_NET_ADMIN), else up to it.
func (c *nlConn) setRecvBuffer(n int) error {
	var serr error
	err := c.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
		if serr != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
	})
	return errors.Join(err, serr)
}

// write sends b, which may hold several netlink messages, in one system
// call. A message to the kernel is processed before write returns. Only
// one goroutine writes to a connection at a time.
func (c *nlConn) write(b []byte) error {
	c.wb = b
	err := c.rc.Write(c.writeF)
	n, werr := c.wn, c.werr
	c.wb, c.werr = nil, nil
	if err == nil {
		err = werr
	}
	if err == nil && n != len(b) {
		err = fmt.Errorf("short netlink write: %d of %d bytes", n, len(b))
	}
	if err != nil {
		return &os.SyscallError{Syscall: "write", Err: err}
	}
	return nil
}

// bind sends the configuration of queue and waits for its acknowledgement.
// Packets that arrive meanwhile are accepted without a mark (so their flows
// are queued again) and counted.
func (c *nlConn) bind(queue uint16, copyRange, maxLen, flags uint32, c2 *counters) error {
	const seq = 1
	if err := c.write(configMsg(queue, seq, copyRange, maxLen, flags)); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		var n int
		var rerr error
		err := c.rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			return true
		})
		if err == nil {
			err = rerr
		}
		if err == unix.EAGAIN || err == unix.EINTR {
			continue // the read timed out; the acknowledgement is on its way
		}
		if err != nil {
			return os.NewSyscallError("recvfrom", err)
		}
		var out []byte
		for m := nlwalk.NewMessages(buf[:n]); m.Next(); {
			switch {
			case m.Type() == unix.NLMSG_ERROR && m.Seq() == seq:
				ack := m.Payload()
				if len(ack) < 4 {
					return errors.New("short netlink acknowledgement")
				}
				if e := int32(binary.NativeEndian.Uint32(ack)); e != 0 {
					return syscall.Errno(-e)
				}
				if len(out) > 0 {
					return c.write(out)
				}
				return nil
			case m.Type() == msgPacket:
				var p packetMsg
				parsePacket(m.Payload(), &p)
				if p.hasID {
					c2.received.Add(1)
					c2.accepted.Add(1)
					out = appendVerdict(out, queue, false, p.id, verdictAccept, false, 0)
				}
			}
		}
		if len(out) > 0 {
			if err := c.write(out); err != nil {
				return err
			}
		}
	}
}

// mmsghdr is struct mmsghdr of recvmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// recvBatch holds the buffers one recvmmsg call fills.
type recvBatch struct {
	bufs  [][]byte
	iovs  []unix.Iovec
	msgs  []mmsghdr
	n     int   // messages the last read returned
	err   error // the last read's error
	readF func(fd uintptr) bool
}

func newRecvBatch(count, size int) *recvBatch {
	r := &recvBatch{bufs: make([][]byte, count), iovs: make([]unix.Iovec, count), msgs: make([]mmsghdr, count)}
	for i := range r.bufs {
		r.bufs[i] = make([]byte, size)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(size)
		r.msgs[i].hdr.Iov = &r.iovs[i]
		r.msgs[i].hdr.SetIovlen(1)
	}
	// Made once: a closure passed to RawConn.Read escapes, and making it
	// per read would allocate on every batch.
	r.readF = func(fd uintptr) bool {
		r.n, r.err = recvmmsg(int(fd), r.msgs)
		return true
	}
	return r
}

// recvmmsg sleeps until a message comes (or readTimeout passes: EAGAIN),
// then takes what else is there without waiting (MSG_WAITFORONE). It goes
// through the runtime's system-call bookkeeping, since it may sleep.
//
// rawWrite never blocks: a message to the kernel is processed (the
// verdicts applied, the packets sent on) before write returns. So it
// bypasses the bookkeeping: a write of a batch of verdicts can take longer
// than the scheduler's 20 µs threshold, after which it would hand the
// goroutine's P to another thread and wake it — a context switch per
// batch, for a call that was never going to sleep.
func recvmmsg(fd int, msgs []mmsghdr) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), unix.MSG_WAITFORONE, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func rawWrite(fd uintptr, b []byte) (int, error) {
	n, _, errno := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// read fills the batch with at least one message, sleeping while the
// socket is empty. It returns the number of messages; EAGAIN when
// readTimeout passed without one.
func (c *nlConn) read(r *recvBatch) (int, error) {
	err := c.rc.Read(r.readF)
	if err == nil {
		err = r.err
	}
	if err != nil {
		return 0, os.NewSyscallError("recvmmsg", err)
	}
	return r.n, nil
}

// message returns the bytes of message i of the last read.
func (r *recvBatch) message(i int) []byte {
	n := int(r.msgs[i].len)
	if n > len(r.bufs[i]) {
		n = len(r.bufs[i])
	}
	return r.bufs[i][:n]
}
