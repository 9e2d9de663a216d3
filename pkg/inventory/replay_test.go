package inventory

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/internal/testpcaps"
	"github.com/picoseg/picoseg/pkg/capture"
	"github.com/picoseg/picoseg/pkg/packet"
)

// replayInto feeds every packet of a capture into inv, one Observe per
// packet as the replay command does, and returns how many were new.
func replayInto(t *testing.T, inv *Inventory, path string) (newDevices int) {
	t.Helper()
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var p packet.Packet
	for {
		ts, err := r.Next(&p)
		var unsupported *capture.UnsupportedLinkError
		switch {
		case errors.Is(err, io.EOF):
			return newDevices
		case errors.As(err, &unsupported):
			continue
		case err != nil:
			t.Fatalf("%s: %v", path, err)
		}
		if inv.Observe(PacketObservation(&p, ts)) {
			newDevices++
		}
	}
}

// senderTotals is what one source MAC sent, computed straight from the
// capture's bytes, without package capture or packet.
type senderTotals struct {
	frames      int
	first, last time.Time
	ipBytes     uint64
	addrs       map[netip.Addr]bool
}

// readEthernetPcap tallies a classic pcap of Ethernet frames by source MAC.
// ok is false for any other kind of capture.
func readEthernetPcap(t *testing.T, path string) (map[[6]byte]*senderTotals, bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 24 {
		return nil, false
	}
	var bo binary.ByteOrder
	nanos := false
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nanos = binary.LittleEndian, true
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	case 0x4d3cb2a1:
		bo, nanos = binary.BigEndian, true
	default:
		return nil, false
	}
	if bo.Uint32(data[20:])&0xffff != 1 { // LINKTYPE_ETHERNET
		return nil, false
	}
	out := map[[6]byte]*senderTotals{}
	for off := 24; off+16 <= len(data); {
		sec, frac := bo.Uint32(data[off:]), bo.Uint32(data[off+4:])
		incl := int(bo.Uint32(data[off+8:]))
		frame := data[off+16 : min(off+16+incl, len(data))]
		off += 16 + incl
		if len(frame) < 14 {
			continue
		}
		ts := time.Unix(int64(sec), int64(frac)*1000)
		if nanos {
			ts = time.Unix(int64(sec), int64(frac))
		}
		src := [6]byte(frame[6:12])
		s := out[src]
		if s == nil {
			s = &senderTotals{first: ts, addrs: map[netip.Addr]bool{}}
			out[src] = s
		}
		s.frames++
		s.last = ts
		ip := frame[14:]
		switch binary.BigEndian.Uint16(frame[12:]) {
		case 0x0800:
			if len(ip) >= 20 {
				s.ipBytes += uint64(binary.BigEndian.Uint16(ip[2:]))
				s.addrs[netip.AddrFrom4([4]byte(ip[12:16]))] = true
			}
		case 0x86dd:
			if len(ip) >= 40 {
				s.ipBytes += 40 + uint64(binary.BigEndian.Uint16(ip[4:]))
				s.addrs[netip.AddrFrom16([16]byte(ip[8:24]))] = true
			}
		}
	}
	return out, true
}

// TestReplayPlug checks the inventory built from the TP-Link HS110 plug's
// setup capture against what tcpdump shows for it:
//
//	tcpdump -tt -nn -e -r iotsentinel_tplink-hs110-plug_setup.pcap ether src 50:c7:bf:00:c7:03
//
// prints 29 frames from 1472729307.033389 (EAPOL) to 1472729345.037059,
// sent from 0.0.0.0 (DHCP) and then 10.10.10.20, and `tcpdump -v` gives IP
// lengths adding up to 5930 bytes (6885 for the gateway, 00:b5:6d:06:08:ba).
func TestReplayPlug(t *testing.T) {
	path := filepath.Join(testpcaps.Dir(t), "iot", "iotsentinel_tplink-hs110-plug_setup.pcap")
	inv, _ := newInv(t, Options{})
	if n := replayInto(t, inv, path); n != 2 {
		t.Errorf("%d new devices, want 2 (the plug and the gateway)", n)
	}
	devs := inv.Devices()
	byMAC := map[string]Device{}
	for _, d := range devs {
		byMAC[d.MAC] = d
	}
	plug, ok := byMAC["50:c7:bf:00:c7:03"]
	if !ok {
		t.Fatalf("plug not in the inventory: %+v", devs)
	}
	if !slices.Equal(plug.Addrs, []string{"10.10.10.20"}) {
		t.Errorf("plug addresses = %v, want [10.10.10.20]", plug.Addrs)
	}
	if want := time.Unix(1472729307, 33389000); !plug.FirstSeen.Equal(want) {
		t.Errorf("plug first seen %v, want %v", plug.FirstSeen, want)
	}
	if want := time.Unix(1472729345, 37059000); !plug.LastSeen.Equal(want) {
		t.Errorf("plug last seen %v, want %v", plug.LastSeen, want)
	}
	if plug.BytesUp != 5930 {
		t.Errorf("plug sent %d IP bytes, tcpdump says 5930", plug.BytesUp)
	}
	if gw := byMAC["00:b5:6d:06:08:ba"]; gw.BytesUp != 6885 || !slices.Contains(gw.Addrs, "10.10.10.1") {
		t.Errorf("gateway = %+v; want 6885 bytes from 10.10.10.1 and others", gw)
	}

	// Replaying the capture again, into an inventory restored from the
	// state file: nothing is new, and every count doubles.
	state := filepath.Join(t.TempDir(), "devices.json")
	first, _ := newInv(t, Options{StatePath: state})
	replayInto(t, first, path)
	if err := first.Save(); err != nil {
		t.Fatal(err)
	}
	again, err := New(Options{StatePath: state})
	if err != nil {
		t.Fatal(err)
	}
	if n := replayInto(t, again, path); n != 0 {
		t.Errorf("%d new devices on the second replay after a restart, want 0", n)
	}
	for _, d := range again.Devices() {
		if d.MAC == "50:c7:bf:00:c7:03" && d.BytesUp != 2*5930 {
			t.Errorf("plug after two replays: %d bytes, want %d", d.BytesUp, 2*5930)
		}
	}
}

// TestReplayCaptures replays every IoT capture and, for the classic
// Ethernet pcaps, checks each sender against totals computed directly from
// the file's bytes.
func TestReplayCaptures(t *testing.T) {
	dir := filepath.Join(testpcaps.Dir(t), "iot")
	files, err := filepath.Glob(filepath.Join(dir, "*.pcap*"))
	if err != nil || len(files) == 0 {
		t.Skipf("no captures in %s", dir)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), func(t *testing.T) {
			inv, _ := newInv(t, Options{})
			newDevices := replayInto(t, inv, path)
			devs := inv.Devices()
			if newDevices != len(devs) {
				t.Errorf("%d new-device reports for %d devices", newDevices, len(devs))
			}
			want, ok := readEthernetPcap(t, path)
			if !ok {
				if len(devs) == 0 {
					t.Error("no devices from a capture of IoT traffic")
				}
				return
			}
			if len(devs) != len(want) {
				t.Errorf("%d devices, the capture has %d senders", len(devs), len(want))
			}
			for _, d := range devs {
				hw, err := net.ParseMAC(d.MAC)
				if err != nil {
					t.Errorf("device without a MAC from an Ethernet capture: %+v", d)
					continue
				}
				w := want[[6]byte(hw)]
				if w == nil {
					t.Errorf("device %s sent nothing in the capture", d.MAC)
					continue
				}
				if !d.FirstSeen.Equal(w.first) || !d.LastSeen.Equal(w.last) || d.BytesUp != w.ipBytes {
					t.Errorf("%s: first %v last %v %d bytes; capture: first %v last %v %d bytes",
						d.MAC, d.FirstSeen, d.LastSeen, d.BytesUp, w.first, w.last, w.ipBytes)
				}
				for _, s := range d.Addrs {
					if !w.addrs[netip.MustParseAddr(s)] {
						t.Errorf("%s: address %s never sent from it", d.MAC, s)
					}
				}
				t.Logf("%s %v %d frames %d bytes", d.MAC, d.Addrs, w.frames, d.BytesUp)
			}
		})
	}
}
