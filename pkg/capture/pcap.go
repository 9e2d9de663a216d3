package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Classic pcap: a 24-byte file header, then records of a 16-byte header
// (24 in the "modified" Kuznetsov format) and the captured bytes.
const (
	pcapFileHeaderSize     = 24
	pcapRecordHeaderSize   = 16
	pcapModifiedHeaderSize = 24
)

type pcapFormat struct {
	big      bool
	nanos    bool
	modified bool
}

// pcapMagic returns the format the magic bytes name.
func pcapMagic(m [4]byte) (pcapFormat, bool) {
	switch binary.LittleEndian.Uint32(m[:]) {
	case 0xa1b2c3d4:
		return pcapFormat{}, true
	case 0xd4c3b2a1:
		return pcapFormat{big: true}, true
	case 0xa1b23c4d:
		return pcapFormat{nanos: true}, true
	case 0x4d3cb2a1:
		return pcapFormat{big: true, nanos: true}, true
	case 0xa1b2cd34:
		return pcapFormat{modified: true}, true
	case 0x34cdb2a1:
		return pcapFormat{big: true, modified: true}, true
	}
	return pcapFormat{}, false
}

type pcapSource struct {
	in        *input
	format    pcapFormat
	hdrSize   int
	fracLimit uint32 // one second in timestamp fraction units
	fracScale int64  // nanoseconds per fraction unit
	link      LinkType
	decode    decodeFunc
}

var _ source = (*pcapSource)(nil)

func newPcapSource(in *input, format pcapFormat) (*pcapSource, error) {
	h, err := in.read(pcapFileHeaderSize)
	if err != nil {
		return nil, fmt.Errorf("capture: pcap file header cut short: %w", noEOF(err))
	}
	s := &pcapSource{in: in, format: format, hdrSize: pcapRecordHeaderSize,
		fracLimit: 1_000_000, fracScale: 1000}
	if s.format.modified {
		s.hdrSize = pcapModifiedHeaderSize
	}
	if s.format.nanos {
		s.fracLimit, s.fracScale = 1_000_000_000, 1
	}
	if major, minor := s.u16(h[4:6]), s.u16(h[6:8]); major != 2 {
		return nil, fmt.Errorf("capture: unsupported pcap version %d.%d", major, minor)
	}
	// The upper bits of the link-type word carry FCS information.
	s.link = LinkType(s.u32(h[20:24]) & 0xffff)
	s.decode = decoderFor(s.link)
	return s, nil
}

func (s *pcapSource) u16(b []byte) uint16 {
	if s.format.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (s *pcapSource) u32(b []byte) uint32 {
	if s.format.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (s *pcapSource) linkType() LinkType { return s.link }

func (s *pcapSource) next(rec *record) error {
	h, err := s.in.read(s.hdrSize)
	if err != nil {
		if err == io.EOF {
			return err
		}
		return fmt.Errorf("record header cut short: %w", err)
	}
	sec, frac := s.u32(h[0:4]), s.u32(h[4:8])
	capLen, wireLen := s.u32(h[8:12]), s.u32(h[12:16])
	// The snapshot length in the file header is not trusted as a bound
	// (writers get it wrong, and it may be 4 GiB); a fixed limit is.
	if capLen > MaxRecordLength {
		return fmt.Errorf("record claims %d captured bytes, more than the %d-byte limit", capLen, MaxRecordLength)
	}
	rec.badTimestamp = frac >= s.fracLimit
	rec.ts = time.Unix(int64(sec), int64(frac)*s.fracScale).UTC()
	data, err := s.in.read(int(capLen))
	if err != nil {
		return fmt.Errorf("record of %d bytes cut short: %w", capLen, noEOF(err))
	}
	rec.data, rec.wireLen, rec.iface = data, int(wireLen), 0
	rec.link, rec.decode = s.link, s.decode
	return nil
}
