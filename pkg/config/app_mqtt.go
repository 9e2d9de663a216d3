package config

import (
	"unicode/utf8"

	"github.com/picoseg/picoseg/pkg/appid"
)

// MQTTRule is [allow.mqtt]: what a plain-MQTT client may say. An MQTT
// broker on TLS (port 8883) cannot be read; such a rule says app = "tls"
// and constrains the broker's server name instead.
type MQTTRule struct {
	// ClientIDs are patterns for the CONNECT's client id, '*' matching any
	// run of characters, case-sensitive ("cam-*"). Empty: any client id.
	ClientIDs []string
	// Publish and Subscribe are MQTT topic filters ('+', '#'). Nil when the
	// key is absent. With either key present every PUBLISH and SUBSCRIBE
	// of the flow is checked, and an absent one allows nothing.
	Publish, Subscribe []string
	Pos                Pos
}

// maxMQTTClientID bounds a client-id pattern: an MQTT string is at most
// 65535 bytes.
const maxMQTTClientID = 65535

func decodeMQTTRule(t table, r *AppRule) {
	t.checkKeys("client_ids", "publish", "subscribe")
	mr := &MQTTRule{Pos: t.Pos()}
	ids, ok := t.strings("client_ids")
	t.nonEmpty("client_ids", ids, ok)
	for _, id := range ids {
		if id.s == "" || len(id.s) > maxMQTTClientID || !utf8.ValidString(id.s) {
			t.errorf(id.pos, "client_ids: %q is not a client id pattern (1 to %d bytes of UTF-8)", id.s, maxMQTTClientID)
			continue
		}
		mr.ClientIDs = append(mr.ClientIDs, id.s)
	}
	mr.Publish = t.mqttFilters("publish")
	mr.Subscribe = t.mqttFilters("subscribe")
	r.MQTT = mr
}

// mqttFilters reads a list of MQTT topic filters: nil when the key is
// absent, empty (not nil) when it is written [] (nothing of the kind is
// allowed).
func (t table) mqttFilters(key string) []string {
	list, ok := t.strings(key)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, f := range list {
		if !appid.ValidMQTTFilter(f.s) {
			t.errorf(f.pos, "%s: %q is not an MQTT topic filter ('+' and '#' are whole levels, '#' only last)", key, f.s)
			continue
		}
		out = append(out, f.s)
	}
	return out
}
