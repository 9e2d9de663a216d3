package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/picoseg/picoseg/pkg/packet"
)

// MaxRecordLength is the most captured bytes one record may hold: libpcap's
// MAXIMUM_SNAPLEN. A longer record is a corrupt capture, never a reason to
// allocate whatever a length field asks for.
const MaxRecordLength = 262144

// readBufferSize holds any ordinary frame, so records are decoded in place
// in the read buffer; larger ones (up to MaxRecordLength) are copied out.
const readBufferSize = 64 << 10

// ErrUnsupportedLink is matched (errors.Is) by the error Next returns for a
// packet whose link type it cannot decode.
var ErrUnsupportedLink = errors.New("capture: unsupported link type")

// UnsupportedLinkError is returned by Next for a packet of a link type it
// cannot decode (see LinkType.Supported). It is per packet: the next call to
// Next reads on. Such packets are counted in Stats.UnsupportedLink.
type UnsupportedLinkError struct {
	Index    int // zero-based index of the packet in the capture
	LinkType LinkType
}

var _ error = (*UnsupportedLinkError)(nil)

func (e *UnsupportedLinkError) Error() string {
	return fmt.Sprintf("capture: packet %d: unsupported link type %v", e.Index, e.LinkType)
}

// Is makes errors.Is(err, ErrUnsupportedLink) true.
func (e *UnsupportedLinkError) Is(target error) bool { return target == ErrUnsupportedLink }

// CorruptError reports a capture that cannot be read further: a record cut
// short, a length that breaks the framing, an unknown interface. Every
// packet Next returned before it was read whole; once Next has returned a
// CorruptError it returns the same error on every later call.
type CorruptError struct {
	Index  int   // zero-based index of the record that could not be read
	Offset int64 // byte offset of that record (in the decompressed stream)
	Err    error // what was wrong
}

var _ error = (*CorruptError)(nil)

func (e *CorruptError) Error() string {
	return fmt.Sprintf("capture: corrupt capture at record %d (byte offset %d): %v", e.Index, e.Offset, e.Err)
}

// Unwrap returns the underlying cause.
func (e *CorruptError) Unwrap() error { return e.Err }

// Stats counts what a Reader has read so far.
type Stats struct {
	// Packets is the number of records Next returned, decoded or not.
	Packets uint64
	// ByKind counts decoded packets by packet.Kind; use Kind to read it.
	ByKind [8]uint64
	// UnsupportedLink counts packets of a link type Next cannot decode.
	UnsupportedLink uint64
	// BadTimestamps counts records whose sub-second timestamp field was
	// out of range (a writer bug); their timestamps are carried into the
	// seconds, as time.Unix does, and the packet is decoded normally.
	BadTimestamps uint64
}

// Kind returns the number of decoded packets of kind k.
func (s *Stats) Kind(k packet.Kind) uint64 {
	if int(k) < len(s.ByKind) {
		return s.ByKind[k]
	}
	return 0
}

// Frame describes the record Next returned last.
type Frame struct {
	// Data is the captured bytes, starting with the link-layer header. It
	// is only valid until the next call to Next.
	Data []byte
	// WireLength is the packet's length on the wire, as the capture says.
	WireLength int
	// Interface is the pcapng interface index (0 for pcap).
	Interface int
	// LinkType is the link type Data was decoded as.
	LinkType LinkType
}

// record is what a format reader hands to Reader.Next.
type record struct {
	data         []byte
	ts           time.Time
	wireLen      int
	iface        int
	link         LinkType
	decode       decodeFunc
	badTimestamp bool
}

// source is one capture format.
type source interface {
	// next reads the next packet record; io.EOF only at a clean end.
	next(rec *record) error
	// linkType is the capture's link type: pcap's, or pcapng's first
	// interface's.
	linkType() LinkType
}

// Reader reads packets from a pcap or pcapng stream; the magic bytes decide,
// not the file name. It is not safe for concurrent use.
type Reader struct {
	br     *bufio.Reader // kept across Reset
	in     *input
	src    source
	dec    *packet.Decoder
	closer io.Closer
	rec    record
	frame  Frame
	index  int
	err    error // sticky: io.EOF or a *CorruptError
	stats  Stats
}

// NewReader reads the capture header from r and returns a Reader for the
// packets after it. It fails with a clear message when r holds neither
// pcap nor pcapng (gzip-compressed ones included) or the header is cut
// short.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{dec: packet.NewDecoder()}
	if err := rd.Reset(r); err != nil {
		return nil, err
	}
	return rd, nil
}

// Reset makes the Reader read a new capture from src, as NewReader would,
// reusing its buffers and decoder: replaying many captures then costs no
// allocation per capture beyond the format's own. The statistics start
// again from zero. Reset does not close a file Open opened. If Reset fails,
// Next returns its error.
func (r *Reader) Reset(src io.Reader) (err error) {
	defer func() {
		if err != nil {
			r.src, r.err = nil, err
		}
	}()
	if r.br == nil {
		r.br = bufio.NewReaderSize(src, readBufferSize)
	} else {
		r.br.Reset(src)
	}
	r.src, r.rec, r.frame, r.index, r.err, r.stats = nil, record{}, Frame{}, 0, nil, Stats{}
	br := r.br
	magic, err := br.Peek(4)
	if len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("capture: reading gzip header: %w", err)
		}
		br = bufio.NewReaderSize(gz, readBufferSize)
		magic, err = br.Peek(4)
	}
	if len(magic) < 4 {
		if len(magic) == 0 && (err == io.EOF || err == nil) {
			return errors.New("capture: empty input, not a pcap or pcapng capture")
		}
		return fmt.Errorf("capture: input too short for a pcap or pcapng header (%d bytes): %w", len(magic), noEOF(err))
	}
	if r.in == nil {
		r.in = &input{}
	}
	r.in.br, r.in.off = br, 0
	var s source
	format, isPcap := pcapMagic([4]byte(magic))
	switch {
	case binary.BigEndian.Uint32(magic) == ngBlockSection:
		s, err = newNgSource(r.in)
	case isPcap:
		s, err = newPcapSource(r.in, format)
	default:
		return fmt.Errorf("capture: unknown capture format (magic bytes % x): want pcap or pcapng", magic)
	}
	if err != nil {
		return err
	}
	r.src = s
	return nil
}

// Open opens the capture file at path; its errors name the path. Close
// releases the file.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.closer = f
	return r, nil
}

// Close closes the file Open opened. For a Reader from NewReader it does
// nothing: the caller owns that stream.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	return err
}

// LinkType returns the capture's link type: the pcap header's, or for
// pcapng that of the first interface (known once its description block has
// been read; NewReader reads it when it directly follows the section
// header). Frame().LinkType is the link type of each packet.
func (r *Reader) LinkType() LinkType {
	if r.src == nil {
		return 0
	}
	return r.src.linkType()
}

// Next decodes the next packet into p, through a packet.Decoder chosen by
// the packet's link type, and returns its timestamp.
//
// At the end of the capture Next returns io.EOF. A capture that cannot be
// read further returns a *CorruptError, and so does every call after it. A
// packet of a link type Next cannot decode returns an *UnsupportedLinkError
// for that packet only. Whenever err is not nil, p holds no packet: it is
// reset with Kind packet.KindMalformed, so that a caller that forgets the
// error still drops it.
func (r *Reader) Next(p *packet.Packet) (time.Time, error) {
	if r.err != nil {
		*p = packet.Packet{Kind: packet.KindMalformed}
		return time.Time{}, r.err
	}
	start := r.in.off
	if err := r.src.next(&r.rec); err != nil {
		if err == io.EOF {
			r.err = io.EOF
		} else {
			r.err = &CorruptError{Index: r.index, Offset: start, Err: err}
		}
		r.frame = Frame{}
		*p = packet.Packet{Kind: packet.KindMalformed}
		return time.Time{}, r.err
	}
	rec := &r.rec
	index := r.index
	r.index++
	r.stats.Packets++
	if rec.badTimestamp {
		r.stats.BadTimestamps++
	}
	r.frame = Frame{Data: rec.data, WireLength: rec.wireLen, Interface: rec.iface, LinkType: rec.link}
	if rec.decode == nil {
		r.stats.UnsupportedLink++
		*p = packet.Packet{Kind: packet.KindMalformed}
		return rec.ts, &UnsupportedLinkError{Index: index, LinkType: rec.link}
	}
	// A record shorter than the packet on the wire was cut by the
	// snapshot length: its headers may still be whole and judgeable.
	r.dec.Snapped = int(rec.wireLen) > len(rec.data)
	rec.decode(r.dec, rec.data, p)
	if int(p.Kind) < len(r.stats.ByKind) {
		r.stats.ByKind[p.Kind]++
	}
	return rec.ts, nil
}

// Frame describes the packet Next returned last (zero before the first
// call and after an error other than *UnsupportedLinkError).
func (r *Reader) Frame() Frame { return r.frame }

// Stats returns the counts so far.
func (r *Reader) Stats() Stats { return r.stats }

// input reads a capture, in place in its buffer where it can, and counts
// the offset.
type input struct {
	br   *bufio.Reader
	off  int64
	long []byte // for reads larger than br's buffer; callers bound n
}

// read returns the next n bytes, valid until the next read. It returns
// io.EOF only when the stream ended exactly here, io.ErrUnexpectedEOF when
// it ended within the n bytes.
func (in *input) read(n int) ([]byte, error) {
	if n > in.br.Size() {
		if cap(in.long) < n {
			in.long = make([]byte, n)
		}
		b := in.long[:n]
		m, err := io.ReadFull(in.br, b)
		in.off += int64(m)
		if err != nil {
			return nil, err // io.EOF only if m == 0
		}
		return b, nil
	}
	b, err := in.br.Peek(n)
	if err != nil {
		if len(b) == 0 && err == io.EOF {
			return nil, io.EOF
		}
		return nil, noEOF(err)
	}
	in.br.Discard(n)
	in.off += int64(n)
	return b, nil
}

// peek returns up to n bytes without consuming them.
func (in *input) peek(n int) []byte {
	b, _ := in.br.Peek(n)
	return b
}

// skip discards n bytes.
func (in *input) skip(n int) error {
	m, err := in.br.Discard(n)
	in.off += int64(m)
	return noEOF(err)
}

// noEOF turns an end of stream inside a structure into an unexpected one.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
