package alert

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/engine"
)

func scanEvent(i int, at time.Time) engine.Event {
	return engine.Event{
		Type: engine.EventDeny, Time: at.UnixNano(), Layer: engine.LayerMicro, Reason: engine.ReasonNoAllowRule,
		Device: "camera-1", Rule: "", Src: addr("10.0.0.5"),
		Dst: netip.AddrFrom4([4]byte{10, 0, 1, byte(i % 250)}), Proto: 6, SPort: 40000, DPort: uint16(1 + i%1000),
	}
}

// A device scanning the network with 10 000 denied flows becomes a
// handful of alerts whose counts add up.
func TestDispatcherScanningDevice(t *testing.T) {
	c := newClock()
	rec := &recorder{}
	d := New(Options{Now: c.Now}, rec.sink())
	for i := range 10000 {
		d.Emit(scanEvent(i, c.Now()))
		if i%1000 == 999 {
			d.call(func() {}) // keep the queue from overflowing
			c.Advance(time.Second)
		}
	}
	d.call(func() {})
	c.Advance(time.Minute)
	d.call(func() { d.publish(d.limiter.Tick(d.out[:0], c.Now())) })
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	got := rec.got()
	t.Logf("alerts:\n%s", dump(got))
	counts := map[Type]int{}
	for _, a := range got {
		counts[a.Type] += a.Count
		if a.Message == "" {
			t.Errorf("alert without a message: %+v", a)
		}
	}
	if len(got) > 6 {
		t.Errorf("%d alerts for one scan, want a handful:\n%s", len(got), dump(got))
	}
	if counts[TypeFlowDenied] != 10000 {
		t.Errorf("flow_denied counts add up to %d, want 10000:\n%s", counts[TypeFlowDenied], dump(got))
	}
	if counts[TypePossibleScan] == 0 {
		t.Errorf("no possible_scan:\n%s", dump(got))
	}
	if got[0].Type != TypeFlowDenied || got[0].Count != 1 || got[0].Layer != engine.LayerMicro ||
		!strings.Contains(got[0].Message, "flow denied at the micro layer: no allow rule permits") {
		t.Errorf("first alert %+v", got[0])
	}

	st := d.Stats()
	if st.EventsIn != 10000 || st.EventsDropped != 0 || st.AlertsOut != uint64(len(got)) || st.ByType["flow_denied"] == 0 {
		t.Errorf("stats %+v", st)
	}
	if st.Sinks[0].Sent != uint64(len(got)) || st.Sinks[0].Dropped != 0 {
		t.Errorf("sink stats %+v", st.Sinks[0])
	}
	recent := d.Recent(2)
	if len(recent) != 2 || recent[1] != got[len(got)-1] {
		t.Errorf("Recent(2) = %+v, want the last two alerts", recent)
	}
}

func dump(as []Alert) string {
	var b strings.Builder
	for _, a := range as {
		b.WriteString("  " + a.Type.String() + " count=" + strconv.Itoa(a.Count) + " " + a.Message + "\n")
	}
	return b.String()
}

func TestDispatcherRaise(t *testing.T) {
	c := newClock()
	rec := &recorder{}
	d := New(Options{Now: c.Now, Recent: 3}, rec.sink())
	d.Raise(Alert{Type: TypeDaemonStarted, Severity: SeverityEmergency})
	d.Raise(Alert{Type: TypePolicyReloadFailed, Reason: `rules/home.toml:12:3: unknown group "camras"`})
	d.Raise(Alert{Type: TypePolicyReloadFailed, Reason: `rules/home.toml:12:3: unknown group "camras"`})
	d.Raise(Alert{Type: TypeNewDevice, Device: "thermostat", Src: addr("10.0.0.9"), Message: "thermostat appeared"})
	d.Raise(Alert{}) // not a type: refused
	d.Raise(Alert{Type: TypeDaemonStopped})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	got := rec.got()
	want := []string{
		"daemon_started info picoseg started",
		`policy_reload_failed err policy reload failed, the running policy stays: rules/home.toml:12:3: unknown group "camras"`,
		"new_device notice thermostat appeared",
		"daemon_stopped notice picoseg stopped",
		// Close flushes the folded second reload failure.
		`policy_reload_failed err policy reload failed, the running policy stays: rules/home.toml:12:3: unknown group "camras" [1 more event]`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d alerts, want %d:\n%s", len(got), len(want), dump(got))
	}
	for i, a := range got {
		if s := a.Type.String() + " " + a.Severity.String() + " " + a.Message; s != want[i] {
			t.Errorf("alert %d:\n got %s\nwant %s", i, s, want[i])
		}
		if !a.Time.Equal(c.Now()) {
			t.Errorf("alert %d time %v", i, a.Time)
		}
	}
	if st := d.Stats(); st.RaisedDropped != 1 {
		t.Errorf("RaisedDropped = %d, want 1", st.RaisedDropped)
	}
	if r := d.Recent(0); len(r) != 3 || r[2] != got[4] || r[0] != got[2] {
		t.Errorf("Recent(0) with a ring of 3 = %+v", r)
	}
}

func TestDispatcherEmitDropsWhenFull(t *testing.T) {
	d := New(Options{Buffer: 8})
	defer d.Close()
	hold, held := make(chan struct{}), make(chan struct{})
	go d.call(func() { close(held); <-hold })
	<-held // the dispatcher's goroutine is busy
	for i := range 100 {
		d.Emit(scanEvent(i, time.Now()))
	}
	close(hold)
	if st := d.Stats(); st.EventsIn != 100 || st.EventsDropped != 92 {
		t.Fatalf("in %d, dropped %d; want 100 and 92", st.EventsIn, st.EventsDropped)
	}
}

// Emit is on the verdict path: it must not allocate.
func TestEmitNoAllocs(t *testing.T) {
	d := New(Options{Buffer: 16})
	defer d.Close()
	ev := scanEvent(1, time.Now())
	if n := testing.AllocsPerRun(1000, func() { d.Emit(ev) }); n != 0 {
		t.Fatalf("Emit allocates %v times", n)
	}
}
