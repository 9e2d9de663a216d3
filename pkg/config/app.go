package config

import (
	"strings"
)

// AppRule is an [[allow]] rule's application constraint: the protocol its
// flows must speak (app), what happens to a flow not identified within the
// inspection budget (unidentified), and the protocol's own sub-table
// ([allow.tls], [allow.http], ...), decoded by that protocol's decoder.
type AppRule struct {
	// Proto is the protocol as written ("tls"); see appid.ParseProto.
	Proto string
	// Unidentified is "deny" (the default) or "allow": what becomes of a
	// flow the checker could not identify within the inspection budget.
	Unidentified string
	TLS          *TLSRule
	HTTP         *HTTPRule
	Modbus       *ModbusRule

	// MQTT and CoAP rules (pkg/config/app_mqtt.go, app_coap.go).
	MQTT *MQTTRule
	CoAP *CoAPRule

	// DNS rules (pkg/config/app_dns.go).
	DNS *DNSRule

	Pos Pos
}

// Unidentified choices.
const (
	UnidentifiedDeny  = "deny"
	UnidentifiedAllow = "allow"
)

// appProtos are the protocols app may name, in policy-file spelling. It
// is the same list as appid's; config does not import the engine's
// packages.
var appProtos = []string{"tls", "http", "dns", "mqtt", "coap", "modbus"}

// appDecoder decodes one protocol's sub-table of an [[allow]] rule into r.
type appDecoder struct {
	key    string // the sub-table's key, which is also the app it needs
	decode func(t table, r *AppRule)
}

// appDecoders are the per-protocol sub-tables: adding a protocol is one line.
var appDecoders = [...]appDecoder{
	{"tls", decodeTLSRule},
	{"http", decodeHTTPRule},
	{"modbus", decodeModbusRule},

	// mqtt, coap
	{"mqtt", decodeMQTTRule},
	{"coap", decodeCoAPRule},

	// dns
	{"dns", decodeDNSRule},
}

// withAppKeys adds the application keys to an [[allow]] table's known keys.
func withAppKeys(known ...string) []string {
	known = append(known, "app", "unidentified")
	for _, d := range appDecoders {
		known = append(known, d.key)
	}
	return known
}

// app decodes an [[allow]] rule's app, unidentified and protocol
// sub-tables; nil when the rule has none of them.
func (t table) app() *AppRule {
	s, pos, hasApp := t.str("app")
	unid, unidPos, hasUnid := t.str("unidentified")
	var sub *appDecoder
	for i := range appDecoders {
		if t.has(appDecoders[i].key) {
			if sub != nil {
				t.errorf(t.keyPos(appDecoders[i].key), "[allow.%s] and [allow.%s] in one rule: a flow speaks one protocol", sub.key, appDecoders[i].key)
				continue
			}
			sub = &appDecoders[i]
		}
	}
	if !hasApp {
		switch {
		case sub != nil:
			t.errorf(t.keyPos(sub.key), "[allow.%s] without app = %q: say which protocol the flow must speak", sub.key, sub.key)
		case hasUnid:
			t.errorf(unidPos, "unidentified without app bounds nothing")
		}
		return nil
	}
	r := &AppRule{Proto: strings.ToLower(s), Unidentified: UnidentifiedDeny, Pos: pos}
	known := false
	for _, p := range appProtos {
		known = known || p == r.Proto
	}
	if !known {
		t.errorf(pos, "unknown app %q: want one of %s", s, strings.Join(appProtos, ", "))
	}
	if hasUnid {
		if unid != UnidentifiedDeny && unid != UnidentifiedAllow {
			t.errorf(unidPos, "unidentified = %q: want \"deny\" or \"allow\"", unid)
		}
		r.Unidentified = unid
	}
	if sub == nil {
		return r
	}
	if sub.key != r.Proto {
		t.errorf(t.keyPos(sub.key), "[allow.%s] in a rule with app = %q", sub.key, r.Proto)
		return r
	}
	st, ok := t.table(sub.key)
	if !ok {
		return r
	}
	st.name = "[allow." + sub.key + "]"
	sub.decode(st, r)
	return r
}

// choice reads a key that takes one of a few words, with a default.
func (t table) choice(key, def string, words ...string) string {
	s, pos, ok := t.str(key)
	if !ok {
		return def
	}
	for _, w := range words {
		if s == w {
			return s
		}
	}
	t.errorf(pos, "%s = %q: want %s", key, s, `"`+strings.Join(words, `" or "`)+`"`)
	return def
}

// nameList reads a list of DNS names, each either exact or "*.suffix"
// (any name below suffix, not suffix itself), lower-cased.
func (t table) nameList(key string) []string {
	list, ok := t.strings(key)
	t.nonEmpty(key, list, ok)
	out := make([]string, 0, len(list))
	for _, n := range list {
		name := strings.ToLower(strings.TrimSuffix(n.s, "."))
		if msg := badNamePattern(name); msg != "" {
			t.errorf(n.pos, "%s: %q %s", key, n.s, msg)
			continue
		}
		out = append(out, name)
	}
	return out
}

// badNamePattern says what is wrong with a name pattern, "" when nothing.
func badNamePattern(name string) string {
	rest := strings.TrimPrefix(name, "*.")
	switch {
	case name == "" || rest == "":
		return "is empty"
	case name == "*":
		return `matches every name: leave the list out instead`
	case strings.Contains(rest, "*"):
		return `has a "*" other than a leading "*.": wildcards match whole leading labels only`
	case len(rest) > 253:
		return "is longer than a DNS name can be"
	case strings.Contains(rest, ".."), strings.HasPrefix(rest, "."):
		return "has an empty label"
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == ':' || c == '[' || c == ']') {
			return "has a character no host name has"
		}
	}
	return ""
}
