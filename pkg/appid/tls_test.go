package appid

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// goClientHello returns the bytes crypto/tls sends first for serverName.
func goClientHello(t testing.TB, serverName string) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer s.Close()
	go func() {
		cl := tls.Client(c, &tls.Config{ServerName: serverName, InsecureSkipVerify: serverName == ""})
		_ = cl.Handshake()
		c.Close()
	}()
	buf := make([]byte, 8192)
	_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := s.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

type ext struct {
	typ  uint16
	body []byte
}

func sniExt(names ...string) ext {
	var list []byte
	for _, n := range names {
		list = append(list, 0)
		list = binary.BigEndian.AppendUint16(list, uint16(len(n)))
		list = append(list, n...)
	}
	return ext{0, binary.BigEndian.AppendUint16(nil, uint16(len(list)))}.with(list)
}

func (e ext) with(b []byte) ext { e.body = append(e.body, b...); return e }

// handHello builds a ClientHello handshake message with exts.
func handHello(exts ...ext) []byte {
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...)
	body = append(body, 0)                // session id
	body = append(body, 0, 2, 0x13, 0x01) // one cipher suite
	body = append(body, 1, 0)             // null compression
	var eb []byte
	for _, e := range exts {
		eb = binary.BigEndian.AppendUint16(eb, e.typ)
		eb = binary.BigEndian.AppendUint16(eb, uint16(len(e.body)))
		eb = append(eb, e.body...)
	}
	if exts != nil {
		body = binary.BigEndian.AppendUint16(body, uint16(len(eb)))
		body = append(body, eb...)
	}
	msg := []byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
	return append(msg, body...)
}

// records wraps a handshake message in records of at most size bytes.
func records(msg []byte, size int) []byte {
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, 22, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

func tlsChecker(names []string, noSNI, ech Choice) *TLSChecker {
	var set *NameSet
	if names != nil {
		set = NewNameSet(names)
	}
	return NewTLS(TLSConfig{Names: set, NoSNI: noSNI, ECH: ech})
}

func TestTLSClientHello(t *testing.T) {
	allowCloud := tlsChecker([]string{"*.tplinkcloud.com", "hue.example"}, Refuse, Refuse)
	tests := []struct {
		name     string
		c        *TLSChecker
		data     []byte
		want     Outcome
		wantName string
		reason   string
	}{
		{"go client, allowed wildcard", allowCloud, goClientHello(t, "eu-wap.tplinkcloud.com"), Pass, "eu-wap.tplinkcloud.com", ""},
		{"go client, exact", allowCloud, goClientHello(t, "hue.example"), Pass, "hue.example", ""},
		{"go client, other name", allowCloud, goClientHello(t, "evil.example"), Deny, "evil.example", "server name not allowed"},
		{"wildcard does not match its suffix", allowCloud, records(handHello(sniExt("tplinkcloud.com")), 1000), Deny, "tplinkcloud.com", "server name not allowed"},
		{"suffix glued to another name", allowCloud, records(handHello(sniExt("eviltplinkcloud.com")), 1000), Deny, "eviltplinkcloud.com", "server name not allowed"},
		{"upper case", allowCloud, records(handHello(sniExt("HUE.Example")), 1000), Pass, "HUE.Example", ""},
		{"no sni refused", allowCloud, records(handHello(ext{typ: 10, body: []byte{0, 2, 0, 29}}), 1000), Deny, "", "no server name"},
		{"no extensions refused", allowCloud, records(handHello(), 1000), Deny, "", "no server name"},
		{"no sni admitted", tlsChecker([]string{"a.b"}, Admit, Refuse), records(handHello(), 1000), Pass, "", ""},
		{"ech refused", allowCloud, records(handHello(sniExt("hue.example"), ext{typ: 0xfe0d, body: []byte{0}}), 1000), Deny, "hue.example", "encrypted client hello"},
		{"ech admitted judges the outer name", tlsChecker([]string{"hue.example"}, Refuse, Admit), records(handHello(sniExt("cloudflare-ech.com"), ext{typ: 0xfe0d, body: []byte{0}}), 1000), Deny, "cloudflare-ech.com", "server name not allowed"},
		{"split across records", allowCloud, records(handHello(sniExt("hue.example")), 7), Pass, "", ""},
		{"two sni extensions", allowCloud, records(handHello(sniExt("hue.example"), sniExt("evil.example")), 1000), Mismatch, "", "two server name extensions"},
		{"two host names", allowCloud, records(handHello(sniExt("hue.example", "evil.example")), 1000), Mismatch, "", "bad server name extension"},
		{"http", allowCloud, []byte("GET / HTTP/1.1\r\nHost: hue.example\r\n\r\n"), Mismatch, "", "not a TLS handshake record"},
		{"server hello first", allowCloud, records(append([]byte{2}, handHello()[1:]...), 1000), Mismatch, "", "first handshake message is no client hello"},
		{"name with a NUL", allowCloud, records(handHello(sniExt("hue.example\x00.evil")), 1000), Deny, "", "server name not allowed"},
		{"any name", tlsChecker(nil, Admit, Admit), goClientHello(t, "whatever.example"), Pass, "whatever.example", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.c.Check(tc.data)
			if v.Outcome != tc.want || v.Reason != tc.reason || (tc.wantName != "" && string(v.Name) != tc.wantName) {
				t.Errorf("Check = %v %q name %q, want %v %q name %q", v.Outcome, v.Reason, v.Name, tc.want, tc.reason, tc.wantName)
			}
		})
	}
}

// Every prefix of a hello is More, never a decision: a ClientHello split
// across TCP segments anywhere is read whole once the rest arrives.
func TestTLSPrefixesNeedMore(t *testing.T) {
	c := tlsChecker([]string{"hue.example"}, Refuse, Refuse)
	for _, data := range [][]byte{goClientHello(t, "hue.example"), records(handHello(sniExt("hue.example")), 5)} {
		for i := 0; i < len(data); i++ {
			if v := c.Check(data[:i]); v.Outcome != More {
				t.Fatalf("prefix of %d of %d bytes: %v %q, want more", i, len(data), v.Outcome, v.Reason)
			}
		}
		if v := c.Check(data); v.Outcome != Pass {
			t.Fatalf("whole hello: %v %q", v.Outcome, v.Reason)
		}
	}
}

func TestTLSCheckAllocatesNothing(t *testing.T) {
	c := tlsChecker([]string{"*.example.com"}, Refuse, Refuse)
	data := goClientHello(t, "a.example.com")
	if n := testing.AllocsPerRun(100, func() { c.Check(data) }); n != 0 {
		t.Errorf("Check allocates %v times", n)
	}
}
