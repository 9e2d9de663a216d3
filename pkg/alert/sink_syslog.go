package alert

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
)

// appName is the APP-NAME of RFC 5424 and the tag of RFC 3164 messages.
const appName = "picoseg"

// sdID is picoseg's structured-data element: a name@number SD-ID
// (RFC 5424 section 7.2.2). 32473 is the private enterprise number that
// RFC 5612 reserves for documentation.
const sdID = "picoseg@32473"

// maxDatagram caps one syslog datagram. RFC 5426 only promises that
// receivers take 480 bytes over IPv4 and should take 2048; OpenWrt's logd
// cuts lines shorter still. Stream transports are not capped.
const maxDatagram = 2048

// DefaultLocalSocket is where the local syslog daemon (logd, rsyslog,
// syslog-ng, systemd-journald) listens.
const DefaultLocalSocket = "/dev/log"

// header is what syslog formats need besides the alert.
type header struct {
	facility Facility
	hostname string
	pid      int
}

// appendRFC5424 formats a as an RFC 5424 message:
//
//	<PRI>1 TIMESTAMP HOSTNAME picoseg PID TYPE [picoseg@32473 type="..." ...] MESSAGE
func appendRFC5424(dst []byte, h *header, a *Alert) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(priority(h.facility, a.Severity)), 10)
	dst = append(dst, ">1 "...)
	dst = a.Time.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, h.hostname, 255)
	dst = append(dst, ' ')
	dst = append(dst, appName...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(h.pid), 10)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, a.Type.String(), 32)
	dst = append(dst, ' ')
	dst = appendSD(dst, a)
	if a.Message != "" {
		dst = append(dst, ' ')
		dst = appendText(dst, a.Message, false)
	}
	return dst
}

// appendSD writes the structured-data element; parameters without a value
// are left out.
func appendSD(dst []byte, a *Alert) []byte {
	dst = append(dst, '[')
	dst = append(dst, sdID...)
	dst = appendParam(dst, "type", a.Type.String())
	dst = appendParam(dst, "device", a.Device)
	if a.Src.IsValid() {
		dst = append(dst, ` src="`...)
		dst = a.Src.AppendTo(dst)
		dst = append(dst, '"')
	}
	if a.Dst.IsValid() {
		dst = append(dst, ` dst="`...)
		dst = a.Dst.AppendTo(dst)
		dst = append(dst, '"')
	}
	dst = appendParam(dst, "proto", a.Proto)
	if hasPorts(a.Proto) {
		dst = append(dst, ` port="`...)
		dst = strconv.AppendUint(dst, uint64(a.DPort), 10)
		dst = append(dst, '"')
	}
	if a.Layer != 0 {
		dst = appendParam(dst, "layer", a.Layer.String())
	}
	dst = appendParam(dst, "rule", a.Rule)
	dst = append(dst, ` count="`...)
	dst = strconv.AppendInt(dst, int64(a.Count), 10)
	dst = append(dst, `"]`...)
	return dst
}

func appendParam(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, `="`...)
	dst = appendText(dst, value, true)
	return append(dst, '"')
}

// appendText copies s as valid UTF-8 with control characters turned into
// spaces. Device, rule and error texts come from configuration files and
// could otherwise end a syslog line early and forge the next one. With
// sdValue it also escapes '"', '\' and ']' as RFC 5424 section 6.3.3
// requires inside PARAM-VALUE.
func appendText(dst []byte, s string, sdValue bool) []byte {
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f:
			dst = append(dst, ' ')
		case sdValue && (r == '"' || r == '\\' || r == ']'):
			dst = append(dst, '\\', byte(r))
		default:
			// Invalid bytes arrive as RuneError and leave as U+FFFD.
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}

// appendHeaderField writes a header field: printable US-ASCII without
// spaces, at most limit bytes, "-" when empty (RFC 5424 section 6).
func appendHeaderField(dst []byte, s string, limit int) []byte {
	n := 0
	for i := 0; i < len(s) && n < limit; i++ {
		if c := s[i]; c > 32 && c < 127 {
			dst = append(dst, c)
			n++
		}
	}
	if n == 0 {
		dst = append(dst, '-')
	}
	return dst
}

// appendRFC3164 formats a for the local syslog socket in the form logd,
// rsyslog's imuxsock and syslog-ng all parse:
//
//	<PRI>Mmm dd hh:mm:ss picoseg[PID]: TYPE: MESSAGE
//
// There is no hostname: the local daemon adds its own.
func appendRFC3164(dst []byte, h *header, a *Alert) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(priority(h.facility, a.Severity)), 10)
	dst = append(dst, '>')
	dst = a.Time.Local().AppendFormat(dst, time.Stamp)
	dst = append(dst, ' ')
	dst = append(dst, appName...)
	dst = append(dst, '[')
	dst = strconv.AppendInt(dst, int64(h.pid), 10)
	dst = append(dst, "]: "...)
	dst = append(dst, a.Type.String()...)
	if a.Message != "" {
		dst = append(dst, ": "...)
		dst = appendText(dst, a.Message, false)
	}
	return dst
}

// appendOctetCounted frames msg as RFC 6587 section 3.4.1 and RFC 5425
// section 4.3 want on a stream: the length in decimal, a space, the message.
func appendOctetCounted(dst, msg []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}

// truncateUTF8 cuts b to at most n bytes without splitting a character.
func truncateUTF8(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return b[:n]
}

// framing says how messages are delimited on a connection.
type framing uint8

const (
	framingDatagram framing = iota // one message per datagram
	framingOctets                  // RFC 6587 octet counting
	framingNewline                 // a local stream socket: one line each
)

var errPeerClosed = errors.New("receiver closed the connection")

// connWriter writes syslog messages to a connection.
type connWriter struct {
	conn    net.Conn
	framing framing
	format  func(dst []byte, h *header, a *Alert) []byte
	header  header
	msg     []byte
	out     []byte
	// gone is set when the receiver closed a stream. A write into a
	// half-closed TCP connection still succeeds locally, and the alert
	// would be lost without an error: syslog receivers never send, so a
	// read that ends means the peer is gone.
	gone atomic.Bool
}

var _ Writer = (*connWriter)(nil)

func newConnWriter(conn net.Conn, f framing, format func([]byte, *header, *Alert) []byte, h header) *connWriter {
	w := &connWriter{conn: conn, framing: f, format: format, header: h}
	if f != framingDatagram {
		go func() {
			io.Copy(io.Discard, conn)
			w.gone.Store(true)
		}()
	}
	return w
}

func (w *connWriter) Write(ctx context.Context, a *Alert) error {
	if w.gone.Load() {
		return errPeerClosed
	}
	w.msg = w.format(w.msg[:0], &w.header, a)
	out := w.msg
	switch w.framing {
	case framingDatagram:
		out = truncateUTF8(out, maxDatagram)
	case framingOctets:
		w.out = appendOctetCounted(w.out[:0], w.msg)
		out = w.out
	case framingNewline:
		w.msg = append(w.msg, '\n')
		out = w.msg
	}
	dl, _ := ctx.Deadline()
	w.conn.SetWriteDeadline(dl)
	// A deadline in the past makes a blocked write return at once.
	stop := context.AfterFunc(ctx, func() { w.conn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	_, err := w.conn.Write(out)
	return err
}

func (w *connWriter) Close() error { return w.conn.Close() }

// dialLocal connects to the local syslog socket: a datagram socket
// everywhere we know of, a stream socket on some older syslog-ng setups.
func dialLocal(path string, h header) Dialer {
	return func(ctx context.Context) (Writer, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unixgram", path)
		if err == nil {
			return newConnWriter(conn, framingDatagram, appendRFC3164, h), nil
		}
		if !errors.Is(err, syscall.EPROTOTYPE) {
			return nil, err
		}
		conn, err = d.DialContext(ctx, "unix", path)
		if err != nil {
			return nil, err
		}
		return newConnWriter(conn, framingNewline, appendRFC3164, h), nil
	}
}

// dialRemote connects to a remote syslog receiver over udp, tcp or, when
// tlsConf is set, TLS.
func dialRemote(network, hostport string, tlsConf *tls.Config, h header) Dialer {
	return func(ctx context.Context) (Writer, error) {
		var d net.Dialer
		if tlsConf != nil {
			td := tls.Dialer{NetDialer: &d, Config: tlsConf}
			conn, err := td.DialContext(ctx, "tcp", hostport)
			if err != nil {
				return nil, err
			}
			return newConnWriter(conn, framingOctets, appendRFC5424, h), nil
		}
		conn, err := d.DialContext(ctx, network, hostport)
		if err != nil {
			return nil, err
		}
		f := framingOctets
		if network == "udp" {
			f = framingDatagram
		}
		return newConnWriter(conn, f, appendRFC5424, h), nil
	}
}
