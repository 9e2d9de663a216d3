package appid

import "testing"

func TestHTTPRequest(t *testing.T) {
	hosts := NewHTTP(HTTPConfig{Hosts: NewNameSet([]string{"hue.example", "*.meethue.com"}), Methods: []string{"GET", "POST"}})
	any := NewHTTP(HTTPConfig{})
	tests := []struct {
		name   string
		c      *HTTPChecker
		data   string
		want   Outcome
		host   string
		reason string
	}{
		{"allowed", hosts, "GET /api HTTP/1.1\r\nHost: hue.example\r\nAccept: */*\r\n\r\n", Pass, "hue.example", ""},
		{"port and case", hosts, "POST /x HTTP/1.1\r\nhOsT:  DIAG.meethue.com:8080 \r\n\r\n", Pass, "DIAG.meethue.com:8080", ""},
		{"other host", hosts, "GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n", Deny, "evil.example", "host not allowed"},
		{"method", hosts, "DELETE / HTTP/1.1\r\nHost: hue.example\r\n\r\n", Deny, "hue.example", "method not allowed"},
		{"no host", hosts, "GET / HTTP/1.0\r\n\r\n", Deny, "", "no Host header"},
		{"no host, any", any, "GET / HTTP/1.0\r\n\r\n", Pass, "", ""},
		{"bare LF", hosts, "GET / HTTP/1.1\nHost: hue.example\n\n", Pass, "hue.example", ""},
		{"two hosts", hosts, "GET / HTTP/1.1\r\nHost: hue.example\r\nHost: evil.example\r\n\r\n", Mismatch, "", "two Host headers"},
		{"space before colon", hosts, "GET / HTTP/1.1\r\nHost : evil.example\r\n\r\n", Mismatch, "", "bad HTTP header name"},
		{"folded", hosts, "GET / HTTP/1.1\r\nHost: hue.example\r\n evil.example\r\n\r\n", Mismatch, "", "folded HTTP header"},
		{"absolute form elsewhere", hosts, "GET http://evil.example/ HTTP/1.1\r\nHost: hue.example\r\n\r\n", Deny, "evil.example", "host not allowed"},
		{"absolute form with userinfo", hosts, "GET http://hue.example@evil.example/ HTTP/1.1\r\nHost: hue.example\r\n\r\n", Deny, "evil.example", "host not allowed"},
		{"connect", NewHTTP(HTTPConfig{Hosts: NewNameSet([]string{"hue.example"})}), "CONNECT evil.example:443 HTTP/1.1\r\nHost: hue.example\r\n\r\n", Deny, "evil.example:443", "host not allowed"},
		{"tls", hosts, "\x16\x03\x01\x02\x00\x01", Mismatch, "", "not an HTTP method"},
		{"ssh", hosts, "SSH-2.0-OpenSSH_9.2\r\n", Mismatch, "", "not an HTTP/1 request line"},
		{"bad version", hosts, "GET / HTTP/9\r\n\r\n", Mismatch, "", "not an HTTP/1 request line"},
		{"lower-case method", hosts, "get / HTTP/1.1\r\n\r\n", Mismatch, "", "not an HTTP/1 request line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.c.Check([]byte(tc.data))
			if v.Outcome != tc.want || v.Reason != tc.reason || string(v.Name) != tc.host {
				t.Errorf("Check = %v %q name %q, want %v %q name %q", v.Outcome, v.Reason, v.Name, tc.want, tc.reason, tc.host)
			}
			// Every prefix is More or the same early mismatch.
			for i := 0; i < len(tc.data); i++ {
				if p := tc.c.Check([]byte(tc.data[:i])); p.Outcome != More && p.Outcome != Mismatch {
					t.Fatalf("prefix %q: %v", tc.data[:i], p.Outcome)
				}
			}
		})
	}
}

func TestHTTPCheckAllocatesNothing(t *testing.T) {
	c := NewHTTP(HTTPConfig{Hosts: NewNameSet([]string{"*.example.com"}), Methods: []string{"GET"}})
	data := []byte("GET /a HTTP/1.1\r\nUser-Agent: x\r\nHost: a.example.com\r\n\r\n")
	if n := testing.AllocsPerRun(100, func() { c.Check(data) }); n != 0 {
		t.Errorf("Check allocates %v times", n)
	}
}
