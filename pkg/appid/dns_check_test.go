package appid

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func query(t testing.TB, name string) []byte {
	t.Helper()
	return buildDNS(t, 1, false, name, dnsmessage.TypeA)
}

// tunnel is what a DNS tunnel's query looks like: data in base32 labels
// under the tunnel's domain.
const tunnel = "mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpjzxi4dsmnxxe5lsnzsxg.ozlumvzxiidbnzsca3lpobzw2ylpnrzsa.t.example.com."

func TestDNSCheck(t *testing.T) {
	allowed := NewNameSet([]string{"*.tplinkcloud.com", "time-b.nist.gov", "*.example.com"})
	for _, tc := range []struct {
		name   string
		cfg    DNSConfig
		msg    []byte
		want   Outcome
		reason string
	}{
		{"allowed name", DNSConfig{Names: allowed}, query(t, "devs.tplinkcloud.com."), Pass, ""},
		{"allowed, other case", DNSConfig{Names: allowed}, query(t, "Time-B.NIST.gov."), Pass, ""},
		{"name not allowed", DNSConfig{Names: allowed}, query(t, "evil.example.net."), Deny, "query name not allowed"},
		{"suffix itself not allowed", DNSConfig{Names: allowed}, query(t, "tplinkcloud.com."), Deny, "query name not allowed"},
		{"any name without a list", DNSConfig{}, query(t, "evil.example.net."), Pass, ""},
		{"long name", DNSConfig{MaxName: 40}, query(t, tunnel), Deny, "query name too long"},
		{"short name under the bound", DNSConfig{MaxName: 40}, query(t, "devs.tplinkcloud.com."), Pass, ""},
		{"tunnel's entropy", DNSConfig{MaxEntropy: 4.0}, query(t, tunnel), Deny, "query name too random (label entropy)"},
		{"a cloud name's entropy", DNSConfig{MaxEntropy: 4.0}, query(t, "devs.tplinkcloud.com."), Pass, ""},
		{"the tunnel within the allowed names (control)", DNSConfig{Names: allowed}, query(t, tunnel), Pass, ""},
		{"a response from the client", DNSConfig{}, buildDNS(t, 1, true, "x.example.com.", dnsmessage.TypeA), Mismatch, "a DNS response from the client"},
		{"not DNS", DNSConfig{}, []byte("GET / HTTP/1.1\r\n\r\n"), Mismatch, "not a DNS query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := NewDNS(tc.cfg).Check(tc.msg)
			if v.Outcome != tc.want || v.Reason != tc.reason {
				t.Errorf("got %v %q, want %v %q", v.Outcome, v.Reason, tc.want, tc.reason)
			}
		})
	}
}

func TestDNSCheckOpcode(t *testing.T) {
	msg := query(t, "x.example.com.")
	msg[2] |= 5 << 3 // UPDATE
	if v := NewDNS(DNSConfig{}).Check(msg); v.Outcome != Deny {
		t.Errorf("an UPDATE: %v", v.Outcome)
	}
}

// TestNameEntropyOfCaptures: the query names of the shared setup captures
// stay under 4 bits per character, and a tunnel's are over it.
func TestNameEntropyOfCaptures(t *testing.T) {
	msgs := captureDNS(t)
	if len(msgs) == 0 {
		t.Skip("shared captures with DNS not present")
	}
	var m DNSMessage
	most := 0.0
	for _, msg := range msgs {
		if m.Parse(msg) == nil && !m.Header.Response() {
			most = max(most, NameEntropy(m.Question.Bytes()))
		}
	}
	t.Logf("highest entropy of a real query name: %.2f bits/char; the tunnel's: %.2f", most, NameEntropy([]byte(strings.TrimSuffix(tunnel, "."))))
	if most >= 4.0 || NameEntropy([]byte(tunnel)) <= 4.0 {
		t.Errorf("entropy %.2f for real names, %.2f for the tunnel", most, NameEntropy([]byte(tunnel)))
	}
}

func TestDNSQueryRate(t *testing.T) {
	c := NewDNS(DNSConfig{Rate: 3, Per: time.Minute})
	a, b := DeviceKey{Device: 1}, DeviceKey{Device: 2}
	now := int64(time.Hour)
	for i := 0; i < 3; i++ {
		if !c.AdmitQuery(a, now) {
			t.Fatalf("query %d of the burst refused", i+1)
		}
	}
	if c.AdmitQuery(a, now) {
		t.Error("a fourth query within the minute admitted")
	}
	if !c.AdmitQuery(b, now) {
		t.Error("another device pays for the first one's queries")
	}
	if !c.AdmitQuery(a, now+int64(20*time.Second)) {
		t.Error("a token did not come back after 20 s")
	}
	if c.AdmitQuery(a, now+int64(21*time.Second)) {
		t.Error("two tokens after 21 s")
	}
	if !NewDNS(DNSConfig{}).AdmitQuery(a, now) {
		t.Error("no rate refuses")
	}
}

func TestDNSCheckNoAllocs(t *testing.T) {
	c := NewDNS(DNSConfig{Names: NewNameSet([]string{"*.tplinkcloud.com"}), MaxName: 100, MaxEntropy: 4})
	msg := query(t, "devs.tplinkcloud.com.")
	if n := testing.AllocsPerRun(100, func() { c.Check(msg) }); n != 0 {
		t.Errorf("Check allocates %v times", n)
	}
}

func BenchmarkDNSCheck(b *testing.B) {
	c := NewDNS(DNSConfig{Names: NewNameSet([]string{"*.tplinkcloud.com", "time-b.nist.gov"}), MaxName: 100, MaxEntropy: 4})
	msg := query(b, "devs.tplinkcloud.com.")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if c.Check(msg).Outcome != Pass {
			b.Fatal("not passed")
		}
	}
}

func BenchmarkDNSQueryRate(b *testing.B) {
	c := NewDNS(DNSConfig{Rate: 1 << 30, Per: time.Second})
	k := DeviceKey{Device: 1}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.AdmitQuery(k, int64(i))
	}
}
