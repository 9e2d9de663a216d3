package inventory

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/picoseg/picoseg/internal/regfile"
)

// LeaseRecheck is the least time between two looks at the leases file.
const LeaseRecheck = 5 * time.Second

// maxLeasesSize bounds how much of a leases file is read. dnsmasq's default
// limit of 1000 leases fits in about 100 KB.
const maxLeasesSize = 4 << 20

// maxLeaseLine bounds one line; longer lines are skipped as junk.
const maxLeaseLine = 4096

// Lease is one line of a dnsmasq leases file.
type Lease struct {
	// Expiry is when the lease ends; the zero Time for an infinite lease.
	Expiry time.Time
	// MAC is the client's hardware address, lower case with colons; ""
	// for a DHCPv6 lease, whose second field is an IAID.
	MAC string
	// Addr is the leased address.
	Addr string
	// Hostname is the name the client asked for; "" when it gave none
	// ("*") or gave one that is not a plain host name.
	Hostname string
}

// SkippedLinesError reports lines of a leases file that are not leases.
// ReadLeases returns it together with the leases it could read.
type SkippedLinesError struct {
	// Lines is how many lines were skipped, First the number (from 1) of
	// the first of them.
	Lines int
	First int
}

var _ error = (*SkippedLinesError)(nil)

// Error says how many lines were skipped and where the first was.
func (e *SkippedLinesError) Error() string {
	return fmt.Sprintf("leases: skipped %d malformed line(s), the first at line %d", e.Lines, e.First)
}

// ReadLeases parses a dnsmasq leases file: one lease a line, "EXPIRY MAC
// ADDR HOSTNAME CLIENTID", with "*" for an unknown hostname or client id.
// DHCPv6 leases have an IAID instead of the MAC, and the "duid" line names
// the server. Blank lines and the duid line are ignored; any other line
// that does not parse is skipped and counted in a *SkippedLinesError,
// returned with the leases that did parse. A read error is returned with
// the leases read before it.
func ReadLeases(r io.Reader) ([]Lease, error) {
	br := bufio.NewReaderSize(r, maxLeaseLine)
	var (
		leases []Lease
		skip   SkippedLinesError
		lineNo int
	)
	junk := func() {
		if skip.Lines == 0 {
			skip.First = lineNo
		}
		skip.Lines++
	}
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 || err == nil {
			lineNo++
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			junk()
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err == nil {
				continue
			}
			line = nil
		}
		if len(line) > 0 {
			switch l, ok := parseLease(line); {
			case ok && l != nil:
				leases = append(leases, *l)
			case !ok:
				junk()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return leases, fmt.Errorf("leases: %w", err)
		}
	}
	if skip.Lines > 0 {
		return leases, &skip
	}
	return leases, nil
}

// parseLease parses one line: ok is false for junk; a nil lease with ok is
// a line to ignore.
func parseLease(line []byte) (l *Lease, ok bool) {
	fields := strings.Fields(string(bytes.TrimSpace(line)))
	switch {
	case len(fields) == 0:
		return nil, true
	case fields[0] == "duid" && len(fields) == 2:
		return nil, true
	case len(fields) < 4 || len(fields) > 5:
		return nil, false
	}
	secs, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil || secs < 0 {
		return nil, false
	}
	addr, err := netip.ParseAddr(fields[2])
	if err != nil {
		return nil, false
	}
	addr = addr.Unmap().WithZone("")
	var lease Lease
	if secs > 0 {
		lease.Expiry = time.Unix(secs, 0)
	}
	lease.Addr = addr.String()
	if hw, err := net.ParseMAC(fields[1]); err == nil && len(hw) == 6 {
		lease.MAC = hw.String()
	} else if addr.Is4() {
		return nil, false
	}
	if h := fields[3]; h != "*" && validHostname(h) {
		lease.Hostname = h
	}
	return &lease, true
}

// validHostname accepts plain host names only. The device picks its own
// name and it ends up in status output, logs and metric labels, so
// anything that could forge a log line or a label (control characters,
// quotes, spaces) is refused. dnsmasq already refuses such names; other
// writers of the file may not.
func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// leaseNames is one read of the leases file, immutable once built.
type leaseNames struct {
	byMAC  map[[6]byte]string
	byAddr map[netip.Addr]string
}

// lookup returns e's hostname: by MAC, then by its addresses, newest first.
// A nil receiver knows no names.
func (n *leaseNames) lookup(e *entry) string {
	if n == nil {
		return ""
	}
	if e.hasMAC {
		if h := n.byMAC[e.mac]; h != "" {
			return h
		}
	}
	for i := len(e.addrs) - 1; i >= 0; i-- {
		if h := n.byAddr[e.addrs[i]]; h != "" {
			return h
		}
	}
	return ""
}

// leaseCache re-reads the leases file when it changes, at most every
// LeaseRecheck.
type leaseCache struct {
	path string

	mu      sync.Mutex
	checked time.Time
	mtime   time.Time
	size    int64
	names   *leaseNames
	count   int
	skipped int
	err     error
}

// get returns the current names, re-reading the file when due and changed.
func (c *leaseCache) get(now time.Time) *leaseNames {
	if c.path == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.checked.IsZero() && now.Sub(c.checked) < LeaseRecheck && now.Sub(c.checked) >= 0 {
		return c.names
	}
	c.checked = now
	st, err := os.Stat(c.path)
	if err != nil {
		// No file (yet, or dnsmasq is not running): no names, and the
		// next change is picked up whatever its mtime.
		c.names, c.count, c.skipped, c.mtime, c.size = nil, 0, 0, time.Time{}, -1
		c.err = err
		return nil
	}
	if c.names != nil && st.ModTime().Equal(c.mtime) && st.Size() == c.size {
		return c.names
	}
	// Opened without blocking and only as a regular file: a FIFO at the
	// leases path would otherwise hang every `status devices` (and hold
	// this lock) until something wrote into it.
	f, err := regfile.Open(c.path, os.O_RDONLY, 0)
	if err != nil {
		c.err = err
		return c.names
	}
	defer f.Close()
	leases, err := ReadLeases(io.LimitReader(f, maxLeasesSize))
	var skipped *SkippedLinesError
	switch {
	case errors.As(err, &skipped):
		c.skipped, c.err = skipped.Lines, nil
	case err != nil:
		c.skipped, c.err = 0, err
	default:
		c.skipped, c.err = 0, nil
	}
	names := &leaseNames{byMAC: map[[6]byte]string{}, byAddr: map[netip.Addr]string{}}
	for _, l := range leases {
		if l.Hostname == "" {
			continue
		}
		if hw, err := net.ParseMAC(l.MAC); err == nil && len(hw) == 6 {
			names.byMAC[[6]byte(hw)] = l.Hostname
		}
		if a, err := netip.ParseAddr(l.Addr); err == nil {
			names.byAddr[a] = l.Hostname
		}
	}
	c.names, c.count, c.mtime, c.size = names, len(leases), st.ModTime(), st.Size()
	return names
}

func (c *leaseCache) stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{Leases: c.count, LeaseLinesSkipped: c.skipped}
	if c.err != nil {
		s.LeaseErr = c.err.Error()
	}
	return s
}
