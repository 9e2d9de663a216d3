package appid

import (
	"bytes"
	"testing"
)

type coapOpt struct {
	num   int
	value string
}

// coapMsg encodes a CoAP message, choosing the extended delta and length
// forms as RFC 7252 §3.1 says.
func coapMsg(typ, code byte, token string, opts []coapOpt, payload string) []byte {
	b := []byte{0x40 | typ<<4 | byte(len(token)), code, 0x12, 0x34}
	b = append(b, token...)
	prev := 0
	for _, o := range opts {
		dn, dext := coapNibble(o.num - prev)
		ln, lext := coapNibble(len(o.value))
		b = append(b, dn<<4|ln)
		b = append(append(b, dext...), lext...)
		b = append(b, o.value...)
		prev = o.num
	}
	if payload != "" {
		b = append(append(b, 0xff), payload...)
	}
	return b
}

func coapNibble(v int) (byte, []byte) {
	switch {
	case v < 13:
		return byte(v), nil
	case v < 269:
		return 13, []byte{byte(v - 13)}
	default:
		return 14, []byte{byte((v - 269) >> 8), byte(v - 269)}
	}
}

func coapPath(segs ...string) []coapOpt {
	var o []coapOpt
	for _, s := range segs {
		o = append(o, coapOpt{CoAPOptionUriPath, s})
	}
	return o
}

func TestCoAPParse(t *testing.T) {
	long := string(bytes.Repeat([]byte("x"), 300))
	opts := []coapOpt{{3, "host"}, {11, "sensors"}, {11, long}, {15, "q=1"}, {60, "13+"}, {2049, "ext14"}}
	msg := coapMsg(CoAPConfirmable, CoAPGet, "tok", opts, "body")
	m, err := ParseCoAP(msg)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 1 || m.Type != CoAPConfirmable || m.Code != CoAPGet || m.MessageID != 0x1234 ||
		string(m.Token) != "tok" || string(m.Payload) != "body" || !m.IsRequest() {
		t.Errorf("header: %+v", m)
	}
	it := m.Options()
	i := 0
	for num, v, ok := it.Next(); ok; num, v, ok = it.Next() {
		if i >= len(opts) || num != opts[i].num || string(v) != opts[i].value {
			t.Errorf("option %d: %d %q", i, num, v)
		}
		i++
	}
	if i != len(opts) {
		t.Errorf("%d options, want %d", i, len(opts))
	}
	if got := string(m.AppendPath(nil)); got != "/sensors/"+long {
		t.Errorf("path %q", got)
	}
	root, _ := ParseCoAP(coapMsg(CoAPNonConfirmable, CoAPGet, "", nil, ""))
	if got := string(root.AppendPath(nil)); got != "/" {
		t.Errorf("root path %q", got)
	}
}

func TestCoAPParseRejects(t *testing.T) {
	good := coapMsg(CoAPConfirmable, CoAPGet, "t", coapPath("a"), "p")
	for name, b := range map[string][]byte{
		"short header":       good[:3],
		"version 2":          append([]byte{0x80 | good[0]&0x3f}, good[1:]...),
		"token length 9":     {0x49, 0x01, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		"token cut":          {0x44, 0x01, 0, 1, 1, 2},
		"empty with token":   {0x41, 0x00, 0, 1, 7},
		"empty with bytes":   {0x40, 0x00, 0, 1, 0xff},
		"marker, no payload": append(coapMsg(0, 1, "", coapPath("a"), ""), 0xff),
		"delta 15":           {0x40, 0x01, 0, 1, 0xf1, 'a'},
		"length 15":          {0x40, 0x01, 0, 1, 0xbf, 'a'},
		"delta 13 cut":       {0x40, 0x01, 0, 1, 0xd1},
		"length 14 cut":      {0x40, 0x01, 0, 1, 0xbe, 0x00},
		"value cut":          {0x40, 0x01, 0, 1, 0xb5, 'a', 'b'},
		"number past 65535":  {0x40, 0x01, 0, 1, 0xe0, 0xff, 0xff, 0xe0, 0xff, 0xff},
	} {
		if _, err := ParseCoAP(b); err != ErrNotCoAP {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func mustCoAP(t testing.TB, c CoAPConstraint) *CoAPChecker {
	t.Helper()
	k, err := NewCoAPChecker(c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCoAPChecker(t *testing.T) {
	k := mustCoAP(t, CoAPConstraint{Methods: []string{"GET", "FETCH"}, Paths: []string{"/sensors/*", "/.well-known/core", "/fw/**", "/"}})
	if k.Stream() || !k.Lifelong() || k.Proto() != CoAP {
		t.Fatal("CoAP is datagrams, every one judged")
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		want   Outcome
		reason string
	}{
		{"get sensor", coapMsg(0, CoAPGet, "ab", coapPath("sensors", "temp"), ""), Pass, ""},
		{"fetch sensor", coapMsg(1, CoAPFetch, "", coapPath("sensors", "hum"), "q"), Pass, ""},
		{"get discovery", coapMsg(0, CoAPGet, "", coapPath(".well-known", "core"), ""), Pass, ""},
		{"get root", coapMsg(0, CoAPGet, "", nil, ""), Pass, ""},
		{"get fw any depth", coapMsg(0, CoAPGet, "", coapPath("fw", "v2", "image"), ""), Pass, ""},
		{"get fw itself", coapMsg(0, CoAPGet, "", coapPath("fw"), ""), Pass, ""},
		{"ack", []byte{0x60, 0x00, 0x12, 0x34}, Pass, ""},
		{"ping", []byte{0x40, 0x00, 0x12, 0x34}, Pass, ""},
		{"put sensor", coapMsg(0, CoAPPut, "", coapPath("sensors", "temp"), "20"), Deny, reasonCoAPMethod},
		{"post sensor", coapMsg(0, CoAPPost, "", coapPath("sensors", "temp"), "20"), Deny, reasonCoAPMethod},
		{"delete", coapMsg(0, CoAPDelete, "", coapPath("sensors", "temp"), ""), Deny, reasonCoAPMethod},
		{"ipatch", coapMsg(0, CoAPIPatch, "", coapPath("sensors", "temp"), "x"), Deny, reasonCoAPMethod},
		{"method 0.08", coapMsg(0, 0x08, "", coapPath("sensors", "temp"), ""), Deny, reasonCoAPUnknown},
		{"get deeper", coapMsg(0, CoAPGet, "", coapPath("sensors", "temp", "x"), ""), Deny, reasonCoAPPath},
		{"get parent", coapMsg(0, CoAPGet, "", coapPath("sensors"), ""), Deny, reasonCoAPPath},
		{"get other", coapMsg(0, CoAPGet, "", coapPath("admin"), ""), Deny, reasonCoAPPath},
		{"slash in segment", coapMsg(0, CoAPGet, "", coapPath("sensors/temp"), ""), Deny, reasonCoAPPath},
		{"dot dot", coapMsg(0, CoAPGet, "", coapPath("sensors", "..", "admin"), ""), Deny, reasonCoAPDotSegment},
		{"encoded dot dot", coapMsg(0, CoAPGet, "", coapPath("sensors", "%2e%2E"), ""), Deny, reasonCoAPDotSegment},
		{"half encoded dot", coapMsg(0, CoAPGet, "", coapPath("sensors", ".%2e"), ""), Deny, reasonCoAPDotSegment},
		{"three dots", coapMsg(0, CoAPGet, "", coapPath("sensors", "..."), ""), Pass, ""},
		{"dot dot under **", coapMsg(0, CoAPGet, "", coapPath("fw", "..", "admin"), ""), Deny, reasonCoAPDotSegment},
		{"proxy", coapMsg(0, CoAPGet, "", []coapOpt{{CoAPOptionProxyUri, "coap://evil/x"}}, ""), Deny, reasonCoAPProxy},
		{"proxy scheme", coapMsg(0, CoAPGet, "", append(coapPath("sensors", "t"), coapOpt{CoAPOptionProxyScheme, "http"}), ""), Deny, reasonCoAPProxy},
		{"response", coapMsg(2, 0x45, "", nil, "data"), Pass, ""},
		{"reserved class", coapMsg(0, 0x21, "", nil, ""), Mismatch, reasonNotCoAP},
		{"dns query", []byte{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00}, Mismatch, reasonNotCoAP},
		{"empty datagram", nil, Mismatch, reasonNotCoAP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := k.Check(tc.data)
			if v.Outcome != tc.want || v.Reason != tc.reason {
				t.Errorf("got %+v, want %v %q", v, tc.want, tc.reason)
			}
			if tc.want != Mismatch && v.Code != int(tc.data[1]) {
				t.Errorf("code %d, want %d", v.Code, tc.data[1])
			}
		})
	}
}

func TestCoAPCheckerAnything(t *testing.T) {
	k := mustCoAP(t, CoAPConstraint{})
	if v := k.Check(coapMsg(0, CoAPPost, "", coapPath("x", "y"), "z")); v.Outcome != Pass {
		t.Errorf("no constraint, POST: %+v", v)
	}
	if v := k.Check([]byte("GET / HTTP/1.1\r\n")); v.Outcome != Mismatch {
		t.Errorf("no constraint, HTTP: %+v", v)
	}
}

func TestCoAPCheckerRejectsBadConstraints(t *testing.T) {
	for _, c := range []CoAPConstraint{
		{Methods: []string{"get"}},
		{Methods: []string{"OPTIONS"}},
		{Paths: []string{"sensors"}},
		{Paths: []string{"/a/**/b"}},
		{Paths: []string{"/a/x**"}},
		{Paths: []string{"/a/../b"}},
	} {
		if _, err := NewCoAPChecker(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestCoAPAppendName(t *testing.T) {
	k := mustCoAP(t, CoAPConstraint{})
	data := coapMsg(0, CoAPGet, "", coapPath("sensors", "temp"), "")
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = k.AppendName(buf[:0], data) }); n != 0 || string(buf) != "/sensors/temp" {
		t.Errorf("AppendName %q with %v allocations", buf, n)
	}
}

func TestCoAPCheckerNoAllocs(t *testing.T) {
	k := mustCoAP(t, CoAPConstraint{Methods: []string{"GET"}, Paths: []string{"/a/*", "/sensors/*"}})
	data := coapMsg(0, CoAPGet, "tk", append(coapPath("sensors", "temp"), coapOpt{15, "unit=c"}), "")
	if n := testing.AllocsPerRun(100, func() {
		if v := k.Check(data); v.Outcome != Pass {
			t.Fatalf("%+v", v)
		}
	}); n != 0 {
		t.Errorf("%v allocations per check", n)
	}
}

func BenchmarkCoAPCheck(b *testing.B) {
	k := mustCoAP(b, CoAPConstraint{Methods: []string{"GET"}, Paths: []string{"/.well-known/core", "/sensors/*"}})
	for _, bc := range []struct {
		name string
		data []byte
		want Outcome
	}{
		{"get_allowed", coapMsg(0, CoAPGet, "tk", coapPath("sensors", "temp"), ""), Pass},
		{"put_denied", coapMsg(0, CoAPPut, "tk", coapPath("sensors", "temp"), "21"), Deny},
		{"path_denied", coapMsg(0, CoAPGet, "tk", coapPath("admin", "reset"), ""), Deny},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				if v := k.Check(bc.data); v.Outcome != bc.want {
					b.Fatal(v)
				}
			}
		})
	}
}
