package inventory

import (
	"encoding/binary"
	"net/url"
)

// MaxMUDURL bounds a MUD URL (RFC 8520 section 10: the DHCPv4 option
// carries it in one option of at most 255 bytes).
const MaxMUDURL = 255

// DHCP option codes and message fields.
const (
	dhcpOptPad      = 0
	dhcpOptHostname = 12
	dhcpOptMUDURL   = 161
	dhcpOptEnd      = 255

	bootRequest   = 1
	bootpFixedLen = 236 // op .. file, before the magic cookie
	dhcpCookie    = 0x63825363
)

// DHCPRequest is what a DHCPv4 client message says about its sender.
type DHCPRequest struct {
	// ClientMAC is the client hardware address (chaddr).
	ClientMAC [6]byte
	// Hostname is option 12 when it is a plain host name, else "".
	Hostname string
	// MUDURL is option 161 (RFC 8520) when it is an https URL of at
	// most MaxMUDURL bytes, else "".
	MUDURL string
}

// ParseDHCPv4IP reads a DHCPv4 client message from an IPv4 packet (as the
// queue hands it over, from the IP header): UDP from port 68 to port 67.
// ok is false for anything else, or for a message it cannot read.
func ParseDHCPv4IP(ip []byte) (req DHCPRequest, ok bool) {
	if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 17 {
		return req, false
	}
	ihl := int(ip[0]&0x0f) * 4
	// Fragments cannot be read whole; DHCP never needs them.
	if ihl < 20 || len(ip) < ihl+8 || binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
		return req, false
	}
	udp := ip[ihl:]
	if binary.BigEndian.Uint16(udp[0:2]) != 68 || binary.BigEndian.Uint16(udp[2:4]) != 67 {
		return req, false
	}
	end := min(len(udp), int(binary.BigEndian.Uint16(udp[4:6])))
	if end < 8 {
		return req, false
	}
	return ParseDHCPv4(udp[8:end])
}

// ParseDHCPv4 reads a DHCPv4 client message (a UDP payload): a
// BOOTREQUEST with an Ethernet client address and the DHCP magic cookie.
// Options are read up to the end option or the end of the bytes given; an
// option cut short ends the reading (what came before it stands). A MUD
// URL written in several options is joined, as RFC 3396 says long options
// are. Nothing is read from the sname and file fields, even when option 52
// says they hold options: clients do not overload.
func ParseDHCPv4(b []byte) (req DHCPRequest, ok bool) {
	if len(b) < bootpFixedLen+4 || b[0] != bootRequest || b[1] != 1 || b[2] != 6 {
		return req, false
	}
	if binary.BigEndian.Uint32(b[bootpFixedLen:]) != dhcpCookie {
		return req, false
	}
	copy(req.ClientMAC[:], b[28:34])
	var mud []byte
	opts := b[bootpFixedLen+4:]
	for i := 0; i < len(opts); {
		code := opts[i]
		if code == dhcpOptEnd {
			break
		}
		if code == dhcpOptPad {
			i++
			continue
		}
		if i+2 > len(opts) || i+2+int(opts[i+1]) > len(opts) {
			break
		}
		val := opts[i+2 : i+2+int(opts[i+1])]
		switch code {
		case dhcpOptHostname:
			if h := string(val); validHostname(h) {
				req.Hostname = h
			}
		case dhcpOptMUDURL:
			if len(mud)+len(val) > MaxMUDURL {
				// Too long: no URL at all, never a cut one.
				return DHCPRequest{ClientMAC: req.ClientMAC, Hostname: req.Hostname}, true
			}
			mud = append(mud, val...)
		}
		i += 2 + len(val)
	}
	if len(mud) > 0 && ValidMUDURL(string(mud)) {
		req.MUDURL = string(mud)
	}
	return req, true
}

// ValidMUDURL reports whether s can be kept as a device's MUD URL: an
// https URL with a host, of printable ASCII without spaces, at most
// MaxMUDURL bytes. RFC 8520 requires https, so that the file comes from
// the manufacturer's server; anything else (http, a file path) could make
// whoever reads the inventory fetch what a device chose. The device picks
// it, so it is also kept free of what could forge a log line or a status
// column.
func ValidMUDURL(s string) bool {
	if len(s) == 0 || len(s) > MaxMUDURL {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil && u.Opaque == ""
}
