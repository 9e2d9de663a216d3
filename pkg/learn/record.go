package learn

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/picoseg/picoseg/pkg/dnsnames"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/inventory"
	"github.com/picoseg/picoseg/pkg/packet"
)

// Recorder bounds: what the daemon keeps for learning, whatever its
// devices do.
const (
	// DefaultRecordEntries bounds the (sender, peer, service) entries.
	DefaultRecordEntries = 16384
	// recordPerSender bounds one sender's entries, so that a device that
	// scans cannot crowd the others out; past it the sender is counted
	// as over (and learn flags it as a scan).
	recordPerSender = 256
)

// Recorder is what the daemon keeps, in monitor mode, for `learn
// --from-daemon`: for each local sender (MAC and address), peer, protocol
// and port, the flows it opened, when, and at what rate. The daemon's
// userspace sees each flow's first packet only (the kernel fast-paths the
// rest), so sizes and bytes are not recorded: a proposal learned from a
// record bounds peers, services, new-flow rates and hours, not volumes.
//
// It is safe for concurrent use. FlowStarted allocates only for an entry
// it has not seen; its memory is bounded by the entry limit.
type Recorder struct {
	mu       sync.Mutex
	loc      *time.Location
	max      int
	entries  map[recordKey]recordEntry
	senders  map[recordSender]int
	refused  uint64
	since    int64
	lastSeen int64
}

type recordSender struct {
	mac    [6]byte
	hasMAC bool
	src    netip.Addr
}

type recordKey struct {
	recordSender
	dst   netip.Addr
	proto uint8
	dport uint16
}

type recordEntry struct {
	flows        uint64
	first, last  int64
	hours        uint32
	days         uint8
	minute       int64
	cur, prev    int
	maxPerMinute int
}

// NewRecorder returns a Recorder keeping at most max entries (0: the
// default), reading hours and days in loc.
func NewRecorder(max int, loc *time.Location) *Recorder {
	if max <= 0 {
		max = DefaultRecordEntries
	}
	if loc == nil {
		loc = time.UTC
	}
	return &Recorder{loc: loc, max: max, entries: map[recordKey]recordEntry{}, senders: map[recordSender]int{}}
}

// FlowStarted records the first packet of a flow its sender opened. The
// caller has checked that the sender is a device of a local zone.
func (r *Recorder) FlowStarted(p *packet.Packet, now time.Time) {
	if p.Kind != packet.KindOK {
		return
	}
	k := recordKey{recordSender: recordSender{src: p.Src.Unmap(), hasMAC: p.HasMAC}, dst: p.Dst.Unmap(), proto: p.Proto}
	if p.HasMAC {
		k.mac = p.SrcMAC
	}
	if p.Proto == packet.ProtoTCP || p.Proto == packet.ProtoUDP {
		k.dport = p.DstPort
	}
	ns := now.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.since == 0 {
		r.since = ns
	}
	r.lastSeen = max(r.lastSeen, ns)
	e, ok := r.entries[k]
	if !ok {
		if len(r.entries) >= r.max || r.senders[k.recordSender] >= recordPerSender {
			r.refused++
			if r.senders[k.recordSender] >= recordPerSender {
				r.senders[k.recordSender]++
			}
			return
		}
		r.senders[k.recordSender]++
		e.first = ns
	}
	e.flows++
	e.last = max(e.last, ns)
	t := now.In(r.loc)
	e.hours |= 1 << uint(t.Hour())
	e.days |= 1 << uint(t.Weekday())
	// Openings per clock minute: the most in two consecutive minutes
	// bounds what any minute, wherever it starts, holds.
	switch m := ns / int64(time.Minute); m {
	case e.minute:
		e.cur++
	case e.minute + 1:
		e.prev, e.cur, e.minute = e.cur, 1, m
	default:
		e.prev, e.cur, e.minute = 0, 1, m
	}
	e.maxPerMinute = max(e.maxPerMinute, e.prev+e.cur)
	r.entries[k] = e
}

// RecordFile is a Recorder's saved form.
type RecordFile struct {
	Since   time.Time     `json:"since"`
	Until   time.Time     `json:"until"`
	Refused uint64        `json:"refused,omitempty"`
	Entries []RecordEntry `json:"entries"`
}

// RecordEntry is one sender, peer and service.
type RecordEntry struct {
	MAC          string    `json:"mac,omitempty"`
	Src          string    `json:"src"`
	Dst          string    `json:"dst"`
	Proto        uint8     `json:"proto"`
	DPort        uint16    `json:"dport,omitempty"`
	Flows        uint64    `json:"flows"`
	First        time.Time `json:"first"`
	Last         time.Time `json:"last"`
	Hours        uint32    `json:"hours"`
	Days         uint8     `json:"days"`
	MaxPerMinute int       `json:"max_per_minute"`
	// SenderOver is set when the sender had more entries than a sender
	// may keep: a scan, most likely.
	SenderOver bool `json:"sender_over,omitempty"`
}

// Snapshot returns what the recorder holds, in a fixed order.
func (r *Recorder) Snapshot() RecordFile {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := RecordFile{Since: time.Unix(0, r.since).UTC(), Until: time.Unix(0, r.lastSeen).UTC(), Refused: r.refused}
	for k, e := range r.entries {
		re := RecordEntry{Src: k.src.String(), Dst: k.dst.String(), Proto: k.proto, DPort: k.dport, Flows: e.flows,
			First: time.Unix(0, e.first).UTC(), Last: time.Unix(0, e.last).UTC(), Hours: e.hours, Days: e.days,
			MaxPerMinute: e.maxPerMinute, SenderOver: r.senders[k.recordSender] > recordPerSender}
		if k.hasMAC {
			re.MAC = net.HardwareAddr(k.mac[:]).String()
		}
		f.Entries = append(f.Entries, re)
	}
	slices.SortFunc(f.Entries, func(a, b RecordEntry) int {
		return cmp.Or(cmp.Compare(a.MAC, b.MAC), cmp.Compare(a.Src, b.Src), cmp.Compare(a.Dst, b.Dst), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.DPort, b.DPort))
	})
	return f
}

// Save writes the record to path atomically: a temporary file in the same
// directory, written, synced and renamed over the old one, 0600.
func (r *Recorder) Save(path string) error {
	data, err := json.Marshal(r.Snapshot())
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("learn record: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("learn record: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("learn record: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("learn record: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("learn record: %w", err)
	}
	return nil
}

// LoadRecord reads a record the daemon saved.
func LoadRecord(path string) (*RecordFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f RecordFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: not a learning record: %w", path, err)
	}
	return &f, nil
}

// Record learns from what the daemon recorded: each entry's flows are
// judged by the base policy as explain judges them, at the entry's last
// time, and those it denies for want of a rule are learned, without
// sizes or volumes (the record has none).
func (l *Learner) Record(f *RecordFile) error {
	eng := engine.New(l.base, engine.Options{FlowCapacity: 16})
	for _, re := range f.Entries {
		if err := l.recordEntry(eng, re); err != nil {
			return err
		}
	}
	if span := f.Until.Sub(f.Since); span > 0 {
		l.covered += span
	}
	for _, t := range []time.Time{f.Since, f.Until} {
		if ns := t.UnixNano(); t.Unix() > 0 {
			if l.first == 0 || ns < l.first {
				l.first = ns
			}
			l.last = max(l.last, ns)
		}
	}
	l.recordRefused += f.Refused
	l.fromRecord = true
	return nil
}

func (l *Learner) recordEntry(eng *engine.Engine, re RecordEntry) error {
	src, err1 := netip.ParseAddr(re.Src)
	dst, err2 := netip.ParseAddr(re.Dst)
	if err1 != nil || err2 != nil || re.Flows == 0 {
		return fmt.Errorf("learning record: bad entry %s -> %s", re.Src, re.Dst)
	}
	var mac [6]byte
	hasMAC := false
	if re.MAC != "" {
		hw, err := net.ParseMAC(re.MAC)
		if err != nil || len(hw) != 6 {
			return fmt.Errorf("learning record: bad MAC %q", re.MAC)
		}
		copy(mac[:], hw)
		hasMAC = true
	}
	if !l.local(src) && !(src.IsLinkLocalUnicast() && usableMAC(mac)) {
		l.fromOutside += re.Flows
		return nil
	}
	o := inventory.Observation{MAC: mac, HasMAC: hasMAC, Addr: src, Time: re.Last}
	l.id.Fill(&o)
	l.inv.Observe(o)
	if hasMAC {
		l.claim(src, mac)
	}
	dev := l.device(src, mac, hasMAC && usableMAC(mac))
	if dev == nil {
		l.notFollowed += re.Flows
		return nil
	}
	q := engine.Query{From: src, To: dst, Proto: re.Proto, DPort: re.DPort, Size: 60, At: re.Last}
	if hasMAC {
		q.FromMAC = &mac
	}
	d := eng.ExplainQuery(q).Decision
	d.WouldDrop = d.WouldDrop || d.Verdict == engine.Drop
	cat, note := classify(l.base, d, true)
	dev.flows[cat] += re.Flows
	if note != "" {
		dev.notes[note] += re.Flows
	}
	if re.SenderOver && dev.scan == "" {
		dev.scan = fmt.Sprintf("opened flows to more than %d peers and services (the daemon's record)", recordPerSender)
	}
	if cat != catLearn {
		return nil
	}
	svc := serviceOf(flowEnds{proto: re.Proto, rport: re.DPort})
	e := l.edgeOf(dev, l.peerKey(dst), svc)
	if e == nil {
		dev.unfollow += re.Flows - 1
		return nil
	}
	e.flows += re.Flows - 1
	e.services[svc] += re.Flows - 1
	if first := re.First.UnixNano(); e.first == 0 || first < e.first {
		e.first = first
	}
	e.last = max(e.last, re.Last.UnixNano())
	e.hours |= re.Hours
	e.days |= re.Days
	e.maxPerMinute += re.MaxPerMinute
	e.sizesUnknown, e.fromRecord = true, true
	// The record keeps no DNS names: its flows followed no answer learn
	// saw, and the peer stays an address.
	e.unnamed += re.Flows
	e.judged += re.Flows
	e.resolver = e.resolver || re.DPort == dnsnames.Port && (re.Proto == packet.ProtoUDP || re.Proto == packet.ProtoTCP)
	return nil
}
