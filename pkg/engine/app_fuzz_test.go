package engine

import (
	"testing"

	"github.com/picoseg/picoseg/pkg/appid"
)

// FuzzAppModbusStream plays an attacker's client segments (in order, ahead,
// sent again with other bytes, overlapping) on a read-only Modbus flow and
// rebuilds what the PLC reads from the segments the engine let through, as
// a receiver does (in-order bytes, the first copy of each). Whatever the
// segments, the PLC's stream is whole read requests and at most the start
// of one more: never a write, never bytes the checker refused.
func FuzzAppModbusStream(f *testing.F) {
	read := mbap(1, 3, 0, 0, 0, 2)
	write := mbap(2, 6, 0, 1, 0, 7)
	seg := func(op byte, b []byte) []byte { return append([]byte{op, byte(len(b))}, b...) }
	f.Add(append(seg(0, read), seg(0, write)...))
	f.Add(append(seg(0, append(append([]byte{}, read...), write[:5]...)), seg(0, write[5:])...))
	f.Add(append(append(seg(0, read), seg(3, write)...), seg(0, read)...))
	f.Add(append(seg(2<<2|2, write), seg(0, read[:6])...))
	f.Add(append(seg(0, read[:10]), seg(1|1<<2, []byte{3, 0, 6, 0, 1})...))
	checker := appid.NewModbus(appid.ModbusConfig{})
	pol := compile(f, appPolicy)
	f.Fuzz(func(t *testing.T, script []byte) {
		r := &appRun{t: t, now: monday10.UnixNano()}
		r.w = New(pol, Options{FlowCapacity: 64, InspectFlows: 4, BudgetCapacity: 16}).NewWorker()
		c := newConv("10.77.0.5:40500", "10.77.0.9:502")
		r.judge(c.syn(), NeedMore, ReasonAppInspecting)
		r.judge(c.synAck(), NeedMore, ReasonNone)
		const start = 1001 // the ISN is 1000
		var server []byte  // what the PLC read, in order
		for len(script) >= 2 {
			op, n := script[0], int(script[1])
			script = script[2:]
			n = min(n, len(script))
			payload := script[:n]
			script = script[n:]
			next := uint32(start + len(server))
			var seq uint32
			switch op & 3 {
			case 0:
				seq = next
			case 1:
				seq = next - uint32(op>>2)
			case 2:
				seq = next + uint32(op>>2) + 1
			default:
				seq = start
			}
			p := c.packet(true, 0x10, seq, payload)
			r.now += 1000
			d := r.w.Judge(p, r.now, NoMeta)
			if d.Verdict == Drop {
				if d.PacketOnly {
					continue
				}
				break // the flow is cut: nothing more reaches the PLC
			}
			// A receiver takes the bytes past what it has, when the
			// segment starts at or before them.
			off := int(int32(seq - next))
			switch {
			case len(payload) == 0:
				continue
			case off > 0:
				t.Fatalf("a segment %d bytes ahead of the PLC's stream was let through", off)
			case -off < len(payload):
				server = append(server, payload[-off:]...)
			}
		}
		for rest := server; len(rest) > 0; {
			v := checker.Check(rest)
			if v.Outcome == appid.Pass && v.Code >= 1 && v.Code <= 4 || v.Outcome == appid.Pass && (v.Code == 7 || v.Code == 11 || v.Code == 12 || v.Code == 17 || v.Code == 20 || v.Code == 24 || v.Code == 43) {
				rest = rest[v.Used:]
				continue
			}
			if v.Outcome == appid.More && v.Code != 6 && v.Code != 5 && v.Code != 15 && v.Code != 16 {
				break
			}
			t.Fatalf("the PLC read %v (code %d, %q) at byte %d of %d", v.Outcome, v.Code, v.Reason, len(server)-len(rest), len(server))
		}
	})
}
