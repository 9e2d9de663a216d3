package config

import "strings"

// HTTPRule is [allow.http]: what an HTTP request may ask for.
type HTTPRule struct {
	// Hosts are the allowed Host names (without port): exact, or
	// "*.suffix". Empty: any host.
	Hosts []string
	// Methods are the allowed request methods, upper case. Empty: any.
	Methods []string
	Pos     Pos
}

// maxHTTPMethod bounds a method's length: the checker reads methods up to
// this long, and a longer one is no method anybody serves.
const maxHTTPMethod = 16

func decodeHTTPRule(t table, r *AppRule) {
	t.checkKeys("hosts", "methods")
	hr := &HTTPRule{Pos: t.Pos()}
	if t.has("hosts") {
		hr.Hosts = t.nameList("hosts")
	}
	methods, ok := t.strings("methods")
	t.nonEmpty("methods", methods, ok)
	for _, m := range methods {
		if m.s == "" || len(m.s) > maxHTTPMethod || strings.Trim(m.s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_") != "" {
			t.errorf(m.pos, "methods: %q is not an HTTP method (upper-case letters, at most %d)", m.s, maxHTTPMethod)
			continue
		}
		hr.Methods = append(hr.Methods, m.s)
	}
	r.HTTP = hr
}
