package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"
)

// pcapng block types and option codes (draft-ietf-opsawg-pcapng).
const (
	ngBlockSection         = 0x0a0d0d0a
	ngBlockInterface       = 0x00000001
	ngBlockObsoletePacket  = 0x00000002
	ngBlockSimplePacket    = 0x00000003
	ngBlockEnhancedPacket  = 0x00000006
	ngByteOrderMagic       = 0x1a2b3c4d
	ngOptionEnd            = 0
	ngOptionTSResolution   = 9
	ngOptionTSOffset       = 14
	ngBlockOverhead        = 12 // type, length, trailing length
	ngSectionMinBody       = 16 // byte-order magic, version, section length
	ngInterfaceMinBody     = 8
	ngEnhancedPacketHeader = 20
	ngObsoletePacketHeader = 20
	ngSimplePacketHeader   = 4
	// ngMaxBlockBody bounds the blocks that are read whole: a packet block
	// holds at most MaxRecordLength bytes plus options. Larger blocks of
	// types we do not parse are skipped without being buffered.
	ngMaxBlockBody = MaxRecordLength + 32<<10
)

type ngInterface struct {
	link        LinkType
	decode      decodeFunc
	snaplen     uint32
	unitsPerSec uint64 // timestamp resolution
	offsetSec   int64  // if_tsoffset
}

// time converts a timestamp in the interface's units. The sub-second part
// is scaled with 128-bit arithmetic so that no resolution can overflow.
func (ifc *ngInterface) time(ts uint64) time.Time {
	sec, frac := ts/ifc.unitsPerSec, ts%ifc.unitsPerSec
	hi, lo := bits.Mul64(frac, 1e9)
	ns, _ := bits.Div64(hi, lo, ifc.unitsPerSec) // hi < unitsPerSec since frac < unitsPerSec
	return time.Unix(int64(sec)+ifc.offsetSec, int64(ns)).UTC()
}

type ngSource struct {
	in        *input
	big       bool
	ifaces    []ngInterface
	firstLink LinkType
	haveLink  bool
}

var _ source = (*ngSource)(nil)

func newNgSource(in *input) (*ngSource, error) {
	s := &ngSource{in: in}
	var rec record
	if _, err := s.block(&rec); err != nil {
		return nil, fmt.Errorf("capture: pcapng section header: %w", err)
	}
	// Read on to the first interface, so LinkType is known, unless a
	// packet block comes first (a corrupt capture: Next reports it).
	for !s.haveLink {
		h := in.peek(8)
		if len(h) < 8 || isPacketBlock(s.u32(h[0:4])) {
			break
		}
		if _, err := s.block(&rec); err != nil {
			return nil, fmt.Errorf("capture: pcapng: %w", err)
		}
	}
	return s, nil
}

func isPacketBlock(typ uint32) bool {
	return typ == ngBlockEnhancedPacket || typ == ngBlockSimplePacket || typ == ngBlockObsoletePacket
}

func (s *ngSource) u16(b []byte) uint16 {
	if s.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (s *ngSource) u32(b []byte) uint32 {
	if s.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (s *ngSource) linkType() LinkType { return s.firstLink }

func (s *ngSource) next(rec *record) error {
	for {
		isPacket, err := s.block(rec)
		if err != nil || isPacket {
			return err
		}
	}
}

// block reads one block; it fills rec and reports true for a packet.
func (s *ngSource) block(rec *record) (bool, error) {
	h, err := s.in.read(8)
	if err != nil {
		if err == io.EOF {
			return false, err
		}
		return false, fmt.Errorf("block header cut short: %w", err)
	}
	typ, rawLen := s.u32(h[0:4]), [4]byte(h[4:8]) // h is reused by the next read
	if typ == ngBlockSection {
		return false, s.section(rawLen)
	}
	total := s.u32(rawLen[:])
	if total < ngBlockOverhead || total%4 != 0 {
		return false, fmt.Errorf("block type %#x has invalid length %d", typ, total)
	}
	bodyLen := int(total) - ngBlockOverhead
	if bodyLen > ngMaxBlockBody {
		if isPacketBlock(typ) || typ == ngBlockInterface {
			return false, fmt.Errorf("block type %#x of %d bytes exceeds the %d-byte limit", typ, total, ngMaxBlockBody)
		}
		if err := s.in.skip(bodyLen + 4); err != nil {
			return false, fmt.Errorf("block type %#x cut short: %w", typ, err)
		}
		return false, nil
	}
	b, err := s.in.read(bodyLen + 4)
	if err != nil {
		return false, fmt.Errorf("block type %#x of %d bytes cut short: %w", typ, total, noEOF(err))
	}
	if trailer := s.u32(b[bodyLen:]); trailer != total {
		return false, fmt.Errorf("block type %#x: trailing length %d does not match leading length %d", typ, trailer, total)
	}
	body := b[:bodyLen]
	switch typ {
	case ngBlockInterface:
		return false, s.iface(body)
	case ngBlockEnhancedPacket:
		if len(body) < ngEnhancedPacketHeader {
			return false, errors.New("enhanced packet block too short")
		}
		return true, s.packet(rec, body, int(s.u32(body[0:4])), ngEnhancedPacketHeader, body[4:20])
	case ngBlockObsoletePacket:
		if len(body) < ngObsoletePacketHeader {
			return false, errors.New("packet block too short")
		}
		return true, s.packet(rec, body, int(s.u16(body[0:2])), ngObsoletePacketHeader, body[4:20])
	case ngBlockSimplePacket:
		return true, s.simplePacket(rec, body)
	}
	// Interface statistics, name resolution, decryption secrets, custom
	// blocks: nothing picoseg judges.
	return false, nil
}

// section reads a section header block. It may switch the byte order, and
// it starts a new list of interfaces.
func (s *ngSource) section(rawLen [4]byte) error {
	bom, err := s.in.read(4)
	if err != nil {
		return fmt.Errorf("section header cut short: %w", noEOF(err))
	}
	switch binary.BigEndian.Uint32(bom) {
	case ngByteOrderMagic:
		s.big = true
	case 0x4d3c2b1a:
		s.big = false
	default:
		return fmt.Errorf("section header has byte-order magic % x", bom)
	}
	total := s.u32(rawLen[:])
	if total < ngBlockOverhead+ngSectionMinBody || total%4 != 0 || total-ngBlockOverhead > ngMaxBlockBody {
		return fmt.Errorf("section header has invalid length %d", total)
	}
	rest := int(total) - 8 - 4 // after type, length and byte-order magic
	b, err := s.in.read(rest)
	if err != nil {
		return fmt.Errorf("section header cut short: %w", noEOF(err))
	}
	if trailer := s.u32(b[rest-4:]); trailer != total {
		return fmt.Errorf("section header: trailing length %d does not match leading length %d", trailer, total)
	}
	if major, minor := s.u16(b[0:2]), s.u16(b[2:4]); major != 1 {
		// Sections of another major version cannot be parsed, and their
		// length is optional, so they cannot be skipped reliably either.
		return fmt.Errorf("unsupported pcapng version %d.%d", major, minor)
	}
	s.ifaces = s.ifaces[:0]
	return nil
}

func (s *ngSource) iface(body []byte) error {
	if len(body) < ngInterfaceMinBody {
		return errors.New("interface description block too short")
	}
	ifc := ngInterface{
		link:        LinkType(s.u16(body[0:2])),
		snaplen:     s.u32(body[4:8]),
		unitsPerSec: 1_000_000, // default: microseconds
	}
	ifc.decode = decoderFor(ifc.link)
	for opts := body[ngInterfaceMinBody:]; len(opts) >= 4; {
		code, n := s.u16(opts[0:2]), int(s.u16(opts[2:4]))
		if 4+n > len(opts) {
			return fmt.Errorf("interface %d: option %d of %d bytes overruns its block", len(s.ifaces), code, n)
		}
		val := opts[4 : 4+n]
		switch code {
		case ngOptionEnd:
			opts = nil
			continue
		case ngOptionTSResolution:
			if n != 1 {
				return fmt.Errorf("interface %d: if_tsresol of %d bytes", len(s.ifaces), n)
			}
			units, ok := tsUnits(val[0])
			if !ok {
				return fmt.Errorf("interface %d: unsupported if_tsresol %#x", len(s.ifaces), val[0])
			}
			ifc.unitsPerSec = units
		case ngOptionTSOffset:
			if n != 8 {
				return fmt.Errorf("interface %d: if_tsoffset of %d bytes", len(s.ifaces), n)
			}
			hi, lo := uint64(s.u32(val[0:4])), uint64(s.u32(val[4:8]))
			if s.big {
				ifc.offsetSec = int64(hi<<32 | lo)
			} else {
				ifc.offsetSec = int64(lo<<32 | hi)
			}
		}
		opts = opts[min(4+(n+3)&^3, len(opts)):]
	}
	if len(s.ifaces) >= 1<<16 {
		return errors.New("more than 65536 interfaces in one section")
	}
	s.ifaces = append(s.ifaces, ifc)
	if !s.haveLink {
		s.firstLink, s.haveLink = ifc.link, true
	}
	return nil
}

// tsUnits turns an if_tsresol byte into timestamp units per second: 10^-n,
// or 2^-n when the top bit is set. Resolutions whose unit count does not fit
// 64 bits are refused.
func tsUnits(v byte) (uint64, bool) {
	n := uint64(v & 0x7f)
	if v&0x80 != 0 {
		if n > 63 {
			return 0, false
		}
		return 1 << n, true
	}
	if n > 19 {
		return 0, false
	}
	units := uint64(1)
	for range n {
		units *= 10
	}
	return units, true
}

// packet fills rec from an enhanced or obsolete packet block.
func (s *ngSource) packet(rec *record, body []byte, ifIndex, hdrLen int, tsLen []byte) error {
	if ifIndex >= len(s.ifaces) {
		return fmt.Errorf("packet names interface %d, but the section has %d", ifIndex, len(s.ifaces))
	}
	ifc := &s.ifaces[ifIndex]
	ts := uint64(s.u32(tsLen[0:4]))<<32 | uint64(s.u32(tsLen[4:8]))
	capLen, wireLen := s.u32(tsLen[8:12]), s.u32(tsLen[12:16])
	if capLen > MaxRecordLength || int(capLen) > len(body)-hdrLen {
		return fmt.Errorf("packet claims %d captured bytes in a block with room for %d", capLen, len(body)-hdrLen)
	}
	rec.data = body[hdrLen : hdrLen+int(capLen)]
	rec.ts, rec.wireLen, rec.iface = ifc.time(ts), int(wireLen), ifIndex
	rec.link, rec.decode, rec.badTimestamp = ifc.link, ifc.decode, false
	return nil
}

// simplePacket fills rec from a simple packet block: interface 0, no
// timestamp (the zero time), captured length implied by the block.
func (s *ngSource) simplePacket(rec *record, body []byte) error {
	if len(s.ifaces) == 0 {
		return errors.New("simple packet block before any interface")
	}
	if len(body) < ngSimplePacketHeader {
		return errors.New("simple packet block too short")
	}
	ifc := &s.ifaces[0]
	wireLen := s.u32(body[0:4])
	capLen := min(uint64(wireLen), uint64(len(body)-ngSimplePacketHeader))
	if ifc.snaplen != 0 {
		capLen = min(capLen, uint64(ifc.snaplen))
	}
	if capLen > MaxRecordLength {
		return fmt.Errorf("simple packet of %d bytes exceeds the %d-byte limit", capLen, MaxRecordLength)
	}
	rec.data = body[ngSimplePacketHeader : ngSimplePacketHeader+int(capLen)]
	rec.ts, rec.wireLen, rec.iface = time.Time{}, int(wireLen), 0
	rec.link, rec.decode, rec.badTimestamp = ifc.link, ifc.decode, false
	return nil
}
