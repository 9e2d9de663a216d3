package appid

import (
	"bytes"
	"errors"
	"testing"
)

// mqttPkt builds one control packet: first byte, remaining length, body.
func mqttPkt(first byte, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	out := []byte{first}
	n := len(b)
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			c |= 0x80
		}
		out = append(out, c)
		if n == 0 {
			break
		}
	}
	return append(out, b...)
}

func mqttStr(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

func mqttConnect(level byte, clientID string) []byte {
	name := "MQTT"
	if level == 3 {
		name = "MQIsdp"
	}
	vh := append(mqttStr(name), level, 0x02, 0x00, 0x3c)
	if level == 5 {
		vh = append(vh, 0x05, 0x11, 0, 0, 0, 10) // session expiry interval
	}
	return mqttPkt(0x10, vh, mqttStr(clientID))
}

func mqttPublish(qos byte, topic string, payload string) []byte {
	vh := mqttStr(topic)
	if qos > 0 {
		vh = append(vh, 0x00, 0x07)
	}
	return mqttPkt(0x30|qos<<1, vh, []byte(payload))
}

// mqttSubscribe311 builds a 3.1.1 SUBSCRIBE of QoS-0 filters.
func mqttSubscribe311(filters ...string) []byte {
	body := []byte{0x00, 0x01}
	for _, f := range filters {
		body = append(append(body, mqttStr(f)...), 0x00)
	}
	return mqttPkt(0x82, body)
}

// mqttSubscribe5 builds a 5.0 SUBSCRIBE with a subscription identifier.
func mqttSubscribe5(filters ...string) []byte {
	body := []byte{0x00, 0x01, 0x02, 0x0b, 0x01}
	for _, f := range filters {
		body = append(append(body, mqttStr(f)...), 0x01)
	}
	return mqttPkt(0x82, body)
}

func TestMQTTRemainingLength(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want int
		size int
		err  error
	}{
		{[]byte{0x30, 0x00}, 0, 2, nil},
		{[]byte{0x30, 0x7f}, 127, 2, nil},
		{[]byte{0x30, 0x80, 0x01}, 128, 3, nil},
		{[]byte{0x30, 0xff, 0x7f}, 16383, 3, nil},
		{[]byte{0x30, 0x80, 0x80, 0x01}, 16384, 4, nil},
		{[]byte{0x30, 0xff, 0xff, 0x7f}, 2097151, 4, nil},
		{[]byte{0x30, 0x80, 0x80, 0x80, 0x01}, 2097152, 5, nil},
		{[]byte{0x30, 0xff, 0xff, 0xff, 0x7f}, MQTTMaxRemaining, 5, nil},
		// A fifth length byte is refused at once, not waited for.
		{[]byte{0x30, 0xff, 0xff, 0xff, 0xff}, 0, 0, ErrMQTTLength},
		{[]byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, 0, 0, ErrMQTTLength},
		{[]byte{0x30, 0x80, 0x00}, 0, 0, ErrMQTTLength},
		{[]byte{0x30, 0xff, 0xff, 0xff}, 0, 0, ErrMQTTTruncated},
		{[]byte{0x30}, 0, 0, ErrMQTTTruncated},
		{[]byte{0x00, 0x00}, 0, 0, ErrMQTTMalformed},
		{[]byte{0x36, 0x00}, 0, 0, ErrMQTTMalformed}, // QoS 3
		{[]byte{0x80, 0x00}, 0, 0, ErrMQTTMalformed}, // SUBSCRIBE flags 0
		{[]byte{0xc1, 0x00}, 0, 0, ErrMQTTMalformed}, // PINGREQ flags 1
	} {
		h, err := ParseMQTTHeader(tc.in)
		if !errors.Is(err, tc.err) || (err == nil && (h.Remaining != tc.want || h.Size != tc.size)) {
			t.Errorf("% x: got %+v, %v; want remaining %d size %d, %v", tc.in, h, err, tc.want, tc.size, tc.err)
		}
	}
}

func TestMQTTParseConnect(t *testing.T) {
	for _, level := range []byte{3, 4, 5} {
		p := mqttConnect(level, "cam-7")
		h, err := ParseMQTTHeader(p)
		if err != nil || h.Type != MQTTConnect || h.Len() != len(p) {
			t.Fatalf("level %d: header %+v, %v", level, h, err)
		}
		c, err := ParseMQTTConnect(p[h.Size:])
		if err != nil || c.Level != level || string(c.ClientID) != "cam-7" {
			t.Errorf("level %d: got %+v, %v", level, c, err)
		}
		for n := h.Size; n < len(p); n++ {
			if _, err := ParseMQTTConnect(p[h.Size:n]); err != ErrMQTTTruncated {
				t.Errorf("level %d cut at %d: %v, want truncated", level, n, err)
			}
		}
	}
	bad := mqttPkt(0x10, mqttStr("MQTT"), []byte{3, 2, 0, 60}, mqttStr("x"))
	if _, err := ParseMQTTConnect(bad[2:]); err != ErrNotMQTT {
		t.Errorf("MQTT level 3: %v, want not MQTT", err)
	}
}

func TestMQTTCovers(t *testing.T) {
	for _, tc := range []struct {
		allowed, f string
		want       bool
	}{
		{"cam/#", "cam/1/temp", true},
		{"cam/#", "cam", true},
		{"cam/#", "cam/+/temp", true},
		{"cam/#", "cam/#", true},
		{"cam/#", "#", false},
		{"cam/#", "camera/1", false},
		{"cam/+/temp", "cam/1/temp", true},
		{"cam/+/temp", "cam/+/temp", true},
		{"cam/+/temp", "cam/#", false},
		{"cam/+/temp", "cam/1/temp/x", false},
		{"cam/+/temp", "cam/1", false},
		{"cam/+", "cam", false},
		{"cam/+", "cam/", true},
		{"cam/1", "cam/+", false},
		{"#", "anything/at/all", true},
		{"#", "#", true},
		{"#", "$SYS/broker", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/broker/load", true},
		{"$share/+/cam/#", "$share/g1/cam/1", true},
		{"a/b", "a/b", true},
		{"a/b", "a/b/", false},
		{"a/b", "a", false},
	} {
		a, ok := newMQTTFilter(tc.allowed)
		if !ok {
			t.Fatalf("%q: not a valid filter", tc.allowed)
		}
		if got := a.covers([]byte(tc.f)); got != tc.want {
			t.Errorf("%q covers %q = %v, want %v", tc.allowed, tc.f, got, tc.want)
		}
	}
}

func TestMQTTTopicValid(t *testing.T) {
	for _, tc := range []struct {
		s            string
		filter, name bool
	}{
		{"a/b", true, true},
		{"a/+/b", true, false},
		{"a/#", true, false},
		{"#", true, false},
		{"+", true, false},
		{"a/b#", false, false},
		{"a/#/b", false, false},
		{"a+/b", false, false},
		{"", false, false},
		{"a/\x00b", false, false},
		{"a/\xff", false, false},
		{"/", true, true},
	} {
		if got := mqttTopicValid([]byte(tc.s), true); got != tc.filter {
			t.Errorf("filter %q valid = %v", tc.s, got)
		}
		if got := mqttTopicValid([]byte(tc.s), false); got != tc.name {
			t.Errorf("name %q valid = %v", tc.s, got)
		}
	}
}

func TestMQTTGlob(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"cam-*", "cam-1", true},
		{"cam-*", "cam-", true},
		{"cam-*", "cam", false},
		{"cam-*", "xcam-1", false},
		{"*-plug", "hs110-plug", true},
		{"*-plug", "hs110-plugx", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"*", "", true},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	} {
		if got := starMatch(tc.p, []byte(tc.s)); got != tc.want {
			t.Errorf("glob %q %q = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}

func mustMQTT(t testing.TB, c MQTTConstraint) *MQTTChecker {
	t.Helper()
	m, err := NewMQTTChecker(c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMQTTCheckerClientID(t *testing.T) {
	m := mustMQTT(t, MQTTConstraint{ClientIDs: []string{"cam-*"}})
	if m.Lifelong() || !m.Stream() || m.Proto() != MQTT {
		t.Fatalf("client-id-only checker: lifelong %v stream %v", m.Lifelong(), m.Stream())
	}
	for _, level := range []byte{3, 4, 5} {
		ok := mqttConnect(level, "cam-1")
		v := m.Check(append(ok, mqttPublish(0, "any/topic", "x")...))
		if v.Outcome != Pass || v.Used != len(ok) || string(v.Name) != "cam-1" || v.Code != MQTTConnect {
			t.Errorf("level %d allowed id: %+v", level, v)
		}
		v = m.Check(mqttConnect(level, "plug-1"))
		if v.Outcome != Deny || v.Reason != reasonClientID || string(v.Name) != "plug-1" {
			t.Errorf("level %d forbidden id: %+v", level, v)
		}
	}
}

func TestMQTTCheckerNotMQTT(t *testing.T) {
	for _, m := range []*MQTTChecker{
		mustMQTT(t, MQTTConstraint{ClientIDs: []string{"*"}}),
		mustMQTT(t, MQTTConstraint{Publish: []string{"#"}}),
	} {
		for name, data := range map[string][]byte{
			"http":         []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
			"tls":          {0x16, 0x03, 0x01, 0x00, 0xa5, 0x01},
			"publish":      mqttPublish(0, "a", "b"),
			"other proto":  mqttPkt(0x10, mqttStr("AMQP"), []byte{4, 2, 0, 60}, mqttStr("x")),
			"bad level":    mqttPkt(0x10, mqttStr("MQTT"), []byte{9, 2, 0, 60}, mqttStr("x")),
			"long length":  {0x10, 0xff, 0xff, 0xff, 0xff, 0x01},
			"short inside": mqttPkt(0x10, mqttStr("MQTT"), []byte{4, 2, 0}),
		} {
			if v := m.CheckFirst(data); v.Outcome != Mismatch {
				t.Errorf("lifelong %v %s: CheckFirst %+v, want mismatch", m.Lifelong(), name, v)
			}
		}
	}
	tls := []byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01}
	if v := mustMQTT(t, MQTTConstraint{}).Check(tls); v.Reason != reasonMQTTOverTLS {
		t.Errorf("TLS ClientHello: %+v, want the reason to name TLS", v)
	}
	// Without topic constraints Check only ever sees the opening bytes.
	m := mustMQTT(t, MQTTConstraint{ClientIDs: []string{"*"}})
	if v := m.Check(mqttPublish(0, "a", "b")); v.Outcome != Mismatch || v.Reason != reasonNoConnect {
		t.Errorf("PUBLISH first: %+v", v)
	}
}

func TestMQTTCheckerTopics(t *testing.T) {
	m := mustMQTT(t, MQTTConstraint{
		ClientIDs: []string{"cam-*"},
		Publish:   []string{"cam/+/status", "cam/+/img/#"},
		Subscribe: []string{"cmd/cam/#"},
	})
	if !m.Lifelong() {
		t.Fatal("a topic constraint must be lifelong")
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		want   Outcome
		reason string
	}{
		{"publish allowed", mqttPublish(0, "cam/1/status", "on"), Pass, ""},
		{"publish qos1 allowed", mqttPublish(1, "cam/1/img/0", "jpeg"), Pass, ""},
		{"publish forbidden", mqttPublish(0, "cam/1/config", "x"), Deny, reasonPublishTopic},
		{"publish wildcard", mqttPublish(0, "cam/+/status", "x"), Deny, reasonMQTTMalformed},
		{"publish sys", mqttPublish(0, "$SYS/x", "x"), Deny, reasonPublishTopic},
		{"publish alias", mqttPublish(0, "", "x"), Pass, ""},
		{"subscribe allowed", mqttSubscribe311("cmd/cam/1", "cmd/cam/+/x"), Pass, ""},
		{"subscribe 5.0 allowed", mqttSubscribe5("cmd/cam/#"), Pass, ""},
		{"subscribe one forbidden", mqttSubscribe311("cmd/cam/1", "#"), Deny, reasonSubscribeFilter},
		{"subscribe 5.0 forbidden", mqttSubscribe5("cmd/cam/1", "cmd/#"), Deny, reasonSubscribeFilter},
		{"subscribe empty", mqttPkt(0x82, []byte{0, 1}), Deny, reasonMQTTMalformed},
		{"subscribe bad filter", mqttSubscribe311("cmd/cam/a#"), Deny, reasonMQTTMalformed},
		{"ping", mqttPkt(0xc0), Pass, ""},
		{"disconnect", mqttPkt(0xe0), Pass, ""},
		{"unsubscribe", mqttPkt(0xa2, []byte{0, 2}, mqttStr("#")), Pass, ""},
		{"connack from client", mqttPkt(0x20, []byte{0, 0}), Deny, reasonMQTTServerType},
		{"bad flags", []byte{0x80, 0x00}, Deny, reasonMQTTMalformed},
		{"five length bytes", []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, Deny, reasonMQTTLength},
		{"connect forbidden later", mqttConnect(4, "plug"), Deny, reasonClientID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := m.Check(tc.data)
			if v.Outcome != tc.want || v.Reason != tc.reason {
				t.Fatalf("got %+v, want outcome %d reason %q", v, tc.want, tc.reason)
			}
			if v.Outcome == Pass && v.Used != len(tc.data) {
				t.Errorf("used %d of %d", v.Used, len(tc.data))
			}
		})
	}
}

// TestMQTTCheckerSubscribeReadings: the checker does not know the level
// the CONNECT named, so it reads a SUBSCRIBE both ways; the reading that
// does not parse must not stand in the way of the one that does, and a
// forbidden filter in either is denied.
func TestMQTTCheckerSubscribeReadings(t *testing.T) {
	m := mustMQTT(t, MQTTConstraint{Subscribe: []string{"ok/#"}})
	for name, tc := range map[string]struct {
		data []byte
		want Outcome
	}{
		"3.1.1 allowed":   {mqttSubscribe311("ok/x"), Pass},
		"5.0 allowed":     {mqttSubscribe5("ok/x"), Pass},
		"3.1.1 forbidden": {mqttSubscribe311("#"), Deny},
		"5.0 forbidden":   {mqttSubscribe5("#"), Deny},
		// As 5.0: packet id 1, no properties, filter "#". As 3.1.1 the
		// filter is empty: that reading is refused, the other judged.
		"5.0 no properties": {mqttPkt(0x82, []byte{0x00, 0x01, 0x00, 0x00, 0x01, '#', 0x00}), Deny},
		"neither":           {mqttPkt(0x82, []byte{0x00, 0x01, 0x00}), Deny},
	} {
		if v := m.Check(tc.data); v.Outcome != tc.want {
			t.Errorf("%s: %+v", name, v)
		}
	}
}

// TestMQTTCheckerSplit hands a session to the checker the way a stream
// framework does: bytes arrive in pieces of every size, and what was used
// is dropped.
func TestMQTTCheckerSplit(t *testing.T) {
	m := mustMQTT(t, MQTTConstraint{ClientIDs: []string{"cam-*"}, Publish: []string{"cam/#"}, Subscribe: []string{"cmd/#"}})
	good := bytes.Join([][]byte{
		mqttConnect(4, "cam-1"), mqttSubscribe311("cmd/1"), mqttPublish(1, "cam/1", "hello"),
		mqttPkt(0xc0), mqttPublish(0, "cam/2", string(make([]byte, 300))),
	}, nil)
	bad := append(append([]byte{}, good...), mqttPublish(0, "other", "x")...)
	for piece := 1; piece <= 9; piece++ {
		if out, _ := feedMQTT(m, good, piece); out != Pass {
			t.Errorf("good session in pieces of %d: %d", piece, out)
		}
		if out, v := feedMQTT(m, bad, piece); out != Deny || v.Reason != reasonPublishTopic || string(v.Name) != "other" {
			t.Errorf("bad session in pieces of %d: %+v", piece, v)
		}
	}
}

// feedMQTT plays a framework: CheckFirst until something is used, Check
// afterwards; skipped bytes (Used past the buffer) are dropped unseen.
func feedMQTT(m *MQTTChecker, stream []byte, piece int) (Outcome, Verdict) {
	var buf []byte
	total, skip := 0, 0
	last := Verdict{Outcome: More}
	for off := 0; off < len(stream); off += piece {
		chunk := stream[off:min(off+piece, len(stream))]
		if skip > 0 {
			n := min(skip, len(chunk))
			chunk, skip = chunk[n:], skip-n
		}
		buf = append(buf, chunk...)
		for len(buf) > 0 {
			var v Verdict
			if total == 0 {
				v = m.CheckFirst(buf)
			} else {
				v = m.Check(buf)
			}
			if v.Outcome == Deny || v.Outcome == Mismatch {
				return v.Outcome, v
			}
			if v.Outcome == More {
				break
			}
			last = v
			total += v.Used
			if v.Used >= len(buf) {
				skip, buf = v.Used-len(buf), buf[:0]
			} else {
				buf = buf[v.Used:]
			}
		}
	}
	if len(buf) > 0 {
		return More, last
	}
	return last.Outcome, last
}

func TestMQTTCheckerPipelined(t *testing.T) {
	m := mustMQTT(t, MQTTConstraint{Publish: []string{"ok/#"}})
	data := bytes.Join([][]byte{mqttConnect(4, "x"), mqttPublish(0, "ok/1", "a"), mqttPublish(0, "no/1", "b")}, nil)
	if v := m.CheckFirst(data); v.Outcome != Deny || string(v.Name) != "no/1" {
		t.Errorf("forbidden publish behind allowed ones in one segment: %+v", v)
	}
	// A forbidden topic is refused as soon as it is in hand, before the
	// payload arrives.
	p := mqttPublish(0, "no/1", string(make([]byte, 1000)))
	if v := m.Check(p[:12]); v.Outcome != Deny {
		t.Errorf("forbidden topic with its payload still to come: %+v", v)
	}
	// An allowed one is used only once whole: Used ends inside data.
	p = mqttPublish(0, "ok/1", string(make([]byte, 1000)))
	if v := m.Check(p[:12]); v.Outcome != More || v.Used != 0 {
		t.Errorf("allowed topic with its payload still to come: %+v", v)
	}
	first := mqttConnect(4, "x")
	if v := m.Check(append(first, p[:12]...)); v.Outcome != Pass || v.Used != len(first) {
		t.Errorf("CONNECT, then an allowed PUBLISH not yet whole: %+v", v)
	}
	// Without topics the CONNECT's client id decides before the rest of
	// a long CONNECT arrives.
	ids := mustMQTT(t, MQTTConstraint{ClientIDs: []string{"x"}})
	long := mqttPkt(0x10, mqttStr("MQTT"), []byte{4, 0xc2, 0, 60}, mqttStr("x"), mqttStr("user"), mqttStr(string(make([]byte, 2000))))
	if v := ids.Check(long[:40]); v.Outcome != Pass || v.Used != 40 {
		t.Errorf("client id before the password: %+v", v)
	}
}

// mqttConnectWill is a CONNECT with a will on topic.
func mqttConnectWill(level byte, clientID, topic string) []byte {
	vh := append(mqttStr("MQTT"), level, 0x02|0x04, 0x00, 0x3c)
	if level == 5 {
		vh = append(vh, 0x00)
	}
	pl := mqttStr(clientID)
	if level == 5 {
		pl = append(pl, 0x02, 0x01, 0x01) // will properties: payload format
	}
	return mqttPkt(0x10, vh, pl, mqttStr(topic), mqttStr("gone"))
}

// TestMQTTCheckerWill: the broker publishes a client's will for it, so a
// will topic is judged like a PUBLISH's.
func TestMQTTCheckerWill(t *testing.T) {
	m := mustMQTT(t, MQTTConstraint{Publish: []string{"cam/+/status"}})
	ids := mustMQTT(t, MQTTConstraint{ClientIDs: []string{"cam-*"}})
	for _, level := range []byte{4, 5} {
		ok, bad := mqttConnectWill(level, "cam-1", "cam/1/status"), mqttConnectWill(level, "cam-1", "cam/1/config")
		if v := m.CheckFirst(ok); v.Outcome != Pass || v.Used != len(ok) {
			t.Errorf("level %d, allowed will topic: %+v", level, v)
		}
		if v := m.CheckFirst(bad); v.Outcome != Deny || v.Reason != reasonWillTopic || string(v.Name) != "cam/1/config" {
			t.Errorf("level %d, forbidden will topic: %+v", level, v)
		}
		if v := m.CheckFirst(bad[:len(bad)-20]); v.Outcome != More {
			t.Errorf("level %d, will topic not yet in hand: %+v", level, v)
		}
		// Without topic constraints the will is not the rule's business.
		if v := ids.Check(bad); v.Outcome != Pass {
			t.Errorf("level %d, client-id rule: %+v", level, v)
		}
	}
}

func TestMQTTCheckerSubscribeBound(t *testing.T) {
	m := mustMQTT(t, MQTTConstraint{Subscribe: []string{"#"}})
	p := mqttSubscribe311(string(bytes.Repeat([]byte("a"), mqttMaxSubscribe)))
	if v := m.Check(p[:100]); v.Outcome != Deny || v.Reason != reasonSubscribeLong {
		t.Errorf("SUBSCRIBE over the bound: %+v", v)
	}
	if v := m.Check(p); v.Outcome != Pass {
		t.Errorf("SUBSCRIBE over the bound, whole: %+v", v)
	}
	small := mqttSubscribe311("a/b")
	if v := m.Check(small[:len(small)-1]); v.Outcome != More {
		t.Errorf("SUBSCRIBE not yet whole: %+v", v)
	}
}

func TestMQTTCheckerRejectsBadConstraints(t *testing.T) {
	for _, c := range []MQTTConstraint{
		{ClientIDs: []string{""}},
		{Publish: []string{"a/#/b"}},
		{Subscribe: []string{"a+"}},
		{Subscribe: []string{""}},
	} {
		if _, err := NewMQTTChecker(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestMQTTCheckerNoAllocs(t *testing.T) {
	m := mustMQTT(t, MQTTConstraint{ClientIDs: []string{"cam-*"}, Publish: []string{"cam/#"}, Subscribe: []string{"cmd/#"}})
	data := bytes.Join([][]byte{mqttConnect(5, "cam-1"), mqttSubscribe5("cmd/1", "cmd/+/x"), mqttPublish(1, "cam/1", "hello")}, nil)
	if n := testing.AllocsPerRun(100, func() {
		if v := m.CheckFirst(data); v.Outcome != Pass {
			t.Fatalf("%+v", v)
		}
	}); n != 0 {
		t.Errorf("%v allocations per check", n)
	}
}

func BenchmarkMQTTCheck(b *testing.B) {
	m := mustMQTT(b, MQTTConstraint{ClientIDs: []string{"cam-*"}, Publish: []string{"cam/+/status", "cam/#"}, Subscribe: []string{"cmd/#"}})
	for _, bc := range []struct {
		name string
		data []byte
	}{
		{"connect", mqttConnect(4, "cam-1")},
		{"publish", mqttPublish(1, "cam/1/status", "on")},
		{"subscribe", mqttSubscribe311("cmd/cam/1", "cmd/cam/+/x")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				if v := m.Check(bc.data); v.Outcome != Pass {
					b.Fatal(v)
				}
			}
		})
	}
}
