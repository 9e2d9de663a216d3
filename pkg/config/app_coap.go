package config

import "github.com/picoseg/picoseg/pkg/appid"

// CoAPRule is [allow.coap]: which requests a CoAP client may send.
type CoAPRule struct {
	// Methods are the allowed request methods, spelt as RFC 7252 and RFC
	// 8132 do ("GET", "iPATCH"). Empty: any method.
	Methods []string
	// Paths are the allowed request paths, matched segment by segment
	// ("/sensors/*", "/fw/**"; see appid.CoAPConstraint). Empty: any path.
	Paths []string
	Pos   Pos
}

func decodeCoAPRule(t table, r *AppRule) {
	t.checkKeys("methods", "paths")
	cr := &CoAPRule{Pos: t.Pos()}
	methods, ok := t.strings("methods")
	t.nonEmpty("methods", methods, ok)
	for _, m := range methods {
		if _, known := appid.CoAPMethod(m.s); !known {
			t.errorf(m.pos, `methods: %q is not a CoAP method (GET, POST, PUT, DELETE, FETCH, PATCH, iPATCH)`, m.s)
			continue
		}
		cr.Methods = append(cr.Methods, m.s)
	}
	paths, ok := t.strings("paths")
	t.nonEmpty("paths", paths, ok)
	for _, p := range paths {
		if msg := appid.ValidCoAPPath(p.s); msg != "" {
			t.errorf(p.pos, "paths: %q %s", p.s, msg)
			continue
		}
		cr.Paths = append(cr.Paths, p.s)
	}
	r.CoAP = cr
}
