package appid

import (
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// buildDNS writes a message with the question q and the answer records rrs
// through golang.org/x/net/dns/dnsmessage, a well-kept reference encoder.
func buildDNS(t testing.TB, id uint16, response bool, q string, qtype dnsmessage.Type, rrs ...dnsmessage.Resource) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, Response: response, RecursionDesired: true})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		t.Fatal(err)
	}
	if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(q), Type: qtype, Class: dnsmessage.ClassINET}); err != nil {
		t.Fatal(err)
	}
	if err := b.StartAnswers(); err != nil {
		t.Fatal(err)
	}
	for _, rr := range rrs {
		var err error
		switch body := rr.Body.(type) {
		case *dnsmessage.AResource:
			err = b.AResource(rr.Header, *body)
		case *dnsmessage.AAAAResource:
			err = b.AAAAResource(rr.Header, *body)
		case *dnsmessage.CNAMEResource:
			err = b.CNAMEResource(rr.Header, *body)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func rrA(name string, ttl uint32, a string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: ttl},
		Body: &dnsmessage.AResource{A: netip.MustParseAddr(a).As4()}}
}

func rrAAAA(name string, ttl uint32, a string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: ttl},
		Body: &dnsmessage.AAAAResource{AAAA: netip.MustParseAddr(a).As16()}}
}

func rrCNAME(name string, ttl uint32, target string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: ttl},
		Body: &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(target)}}
}

func addrsOf(m *DNSMessage) []DNSAddr { return append([]DNSAddr(nil), m.Addrs[:m.NAddrs]...) }

func TestDNSParseAnswers(t *testing.T) {
	a := func(s string, ttl uint32) DNSAddr { return DNSAddr{Addr: netip.MustParseAddr(s), TTL: ttl} }
	for _, tc := range []struct {
		name     string
		q        string
		qtype    dnsmessage.Type
		rrs      []dnsmessage.Resource
		want     []DNSAddr
		question string
	}{
		{"one A", "Devs.TPLinkCloud.com.", dnsmessage.TypeA, []dnsmessage.Resource{rrA("devs.tplinkcloud.com.", 300, "52.1.2.3")},
			[]DNSAddr{a("52.1.2.3", 300)}, "devs.tplinkcloud.com"},
		{"AAAA", "hue.example.", dnsmessage.TypeAAAA, []dnsmessage.Resource{rrAAAA("hue.example.", 60, "2001:db8::7")},
			[]DNSAddr{a("2001:db8::7", 60)}, "hue.example"},
		{"CNAME chain, smallest TTL on the way", "bridge.meethue.com.", dnsmessage.TypeA, []dnsmessage.Resource{
			rrCNAME("bridge.meethue.com.", 30, "cdn.meethue.com."),
			rrCNAME("cdn.meethue.com.", 600, "edge.akamai.example."),
			rrA("edge.akamai.example.", 120, "23.1.1.1"),
			rrA("edge.akamai.example.", 10, "23.1.1.2"),
		}, []DNSAddr{a("23.1.1.1", 30), a("23.1.1.2", 10)}, "bridge.meethue.com"},
		{"CNAME written after its address", "a.example.", dnsmessage.TypeA, []dnsmessage.Resource{
			rrA("b.example.", 100, "10.9.9.9"),
			rrCNAME("a.example.", 200, "b.example."),
		}, []DNSAddr{a("10.9.9.9", 100)}, "a.example"},
		{"records of other names are not the question's", "good.example.", dnsmessage.TypeA, []dnsmessage.Resource{
			rrA("evil.example.", 100, "6.6.6.6"),
			rrA("good.example.", 100, "1.1.1.1"),
			rrCNAME("other.example.", 100, "good.example."),
		}, []DNSAddr{a("1.1.1.1", 100)}, "good.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m DNSMessage
			if err := m.Parse(buildDNS(t, 0x1234, true, tc.q, tc.qtype, tc.rrs...)); err != nil {
				t.Fatal(err)
			}
			if m.Header.ID != 0x1234 || !m.Header.Response() || m.Question.String() != tc.question {
				t.Errorf("header %+v question %q", m.Header, m.Question.String())
			}
			got := addrsOf(&m)
			if len(got) != len(tc.want) {
				t.Fatalf("addresses %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("address %d: %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestDNSParseQuery(t *testing.T) {
	var m DNSMessage
	if err := m.Parse(buildDNS(t, 7, false, "time-b.NIST.gov.", dnsmessage.TypeAAAA)); err != nil {
		t.Fatal(err)
	}
	if m.Header.Response() || m.Question.String() != "time-b.nist.gov" || m.QType != DNSTypeAAAA || m.NAddrs != 0 {
		t.Errorf("got %+v %q", m.Header, m.Question.String())
	}
}

// TestDNSParseHostile feeds messages written to make a parser loop, read
// past the end or confuse names.
func TestDNSParseHostile(t *testing.T) {
	hdr := func(qd, an uint16) []byte {
		return []byte{0, 1, 0x81, 0x80, byte(qd >> 8), byte(qd), byte(an >> 8), byte(an), 0, 0, 0, 0}
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	q := []byte{1, 'a', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1}
	for _, tc := range []struct {
		name string
		msg  []byte
		want error
	}{
		{"short header", []byte{0, 1, 2}, ErrDNSShort},
		{"no question", hdr(0, 0), ErrDNSQuestions},
		{"two questions", cat(hdr(2, 0), q, q), ErrDNSQuestions},
		{"pointer to itself", cat(hdr(1, 0), []byte{0xc0, 12, 0, 1, 0, 1}), ErrDNSPointer},
		{"pointer forward", cat(hdr(1, 0), []byte{0xc0, 14, 0, 0, 1, 0, 1}), ErrDNSPointer},
		// The answer's name is a label then a pointer back to that label:
		// backwards from the pointer, but into the name itself: a loop.
		{"pointer loop through a label", cat(hdr(1, 1), q, []byte{1, 'x', 0xc0, 27}), ErrDNSPointer},
		// Two names pointing at each other.
		{"two pointers at each other", cat(hdr(1, 1), []byte{0xc0, 14, 0xc0, 12, 0, 1, 0, 1}), ErrDNSPointer},
		{"label with a dot", cat(hdr(1, 0), []byte{3, 'a', '.', 'b', 0, 0, 1, 0, 1}), ErrDNSName},
		{"label with a NUL", cat(hdr(1, 0), []byte{3, 'a', 0, 'b', 0, 0, 1, 0, 1}), ErrDNSName},
		{"extended label type", cat(hdr(1, 0), []byte{0x41, 0, 0, 1, 0, 1}), ErrDNSName},
		{"label past the end", cat(hdr(1, 0), []byte{9, 'a'}), ErrDNSShort},
		{"question without type", cat(hdr(1, 0), []byte{1, 'a', 0, 0}), ErrDNSShort},
		{"answer rdata past the end", cat(hdr(1, 1), q, []byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 1, 2}), ErrDNSShort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m DNSMessage
			if err := m.Parse(tc.msg); !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDNSNameTooLong(t *testing.T) {
	// 5 labels of 63 bytes: 319 bytes written out, over the 253 limit.
	msg := []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	for i := 0; i < 5; i++ {
		msg = append(msg, 63)
		for j := 0; j < 63; j++ {
			msg = append(msg, 'a')
		}
	}
	msg = append(msg, 0, 0, 1, 0, 1)
	var m DNSMessage
	if err := m.Parse(msg); !errors.Is(err, ErrDNSName) {
		t.Errorf("error %v, want ErrDNSName", err)
	}
}

func TestDNSParseNoAllocs(t *testing.T) {
	msg := buildDNS(t, 9, true, "bridge.meethue.com.", dnsmessage.TypeA,
		rrCNAME("bridge.meethue.com.", 30, "cdn.meethue.com."), rrA("cdn.meethue.com.", 60, "23.1.1.1"))
	var m DNSMessage
	if n := testing.AllocsPerRun(100, func() { _ = m.Parse(msg) }); n != 0 {
		t.Errorf("Parse allocates %v times per message", n)
	}
}

func BenchmarkDNSParseAnswer(b *testing.B) {
	msg := buildDNS(b, 9, true, "bridge.meethue.com.", dnsmessage.TypeA,
		rrCNAME("bridge.meethue.com.", 30, "cdn.meethue.com."), rrA("cdn.meethue.com.", 60, "23.1.1.1"), rrA("cdn.meethue.com.", 60, "23.1.1.2"))
	var m DNSMessage
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for i := 0; i < b.N; i++ {
		if err := m.Parse(msg); err != nil || m.NAddrs != 2 {
			b.Fatal(err, m.NAddrs)
		}
	}
}
