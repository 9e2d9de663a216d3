package policy

import (
	"testing"

	"github.com/picoseg/picoseg/pkg/appid"
)

// mqttConnectBytes is a 3.1.1 CONNECT with client id id.
func mqttConnectBytes(id string) []byte {
	b := []byte{0x10, byte(12 + len(id)), 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, byte(len(id))}
	return append(b, id...)
}

func mqttPublishBytes(topic string) []byte {
	b := []byte{0x30, byte(2 + len(topic) + 1), 0, byte(len(topic))}
	return append(append(b, topic...), 'x')
}

func TestCompileMQTT(t *testing.T) {
	src := `
[[zone]]
name = "lan"
networks = ["10.88.0.0/24"]

[[allow]]
name = "ids"
from = "any"
to = "any"
services = ["tcp/1883"]
app = "mqtt"
[allow.mqtt]
client_ids = ["cam-*"]

[[allow]]
name = "topics"
from = "any"
to = "any"
services = ["tcp/1884"]
app = "mqtt"
[allow.mqtt]
publish = ["cam/#"]

[[allow]]
name = "bare"
from = "any"
to = "any"
services = ["tcp/1885"]
app = "mqtt"
`
	p := compileTest(t, src)
	ids, topics, bare := p.Rules[0].App, p.Rules[1].App, p.Rules[2].App
	if ids == nil || ids.Proto() != appid.MQTT || ids.Lifelong() || !ids.Stream() {
		t.Fatalf("ids: %v", ids)
	}
	if v := ids.Check(mqttConnectBytes("cam-1")); v.Outcome != appid.Pass {
		t.Errorf("ids, allowed client: %+v", v)
	}
	if v := ids.Check(mqttConnectBytes("plug-1")); v.Outcome != appid.Deny {
		t.Errorf("ids, forbidden client: %+v", v)
	}
	if topics == nil || !topics.Lifelong() {
		t.Fatalf("topics: %v", topics)
	}
	if v := topics.Check(mqttPublishBytes("cam/1")); v.Outcome != appid.Pass {
		t.Errorf("topics, allowed publish: %+v", v)
	}
	if v := topics.Check(mqttPublishBytes("plug/1")); v.Outcome != appid.Deny {
		t.Errorf("topics, forbidden publish: %+v", v)
	}
	if bare == nil || bare.Lifelong() {
		t.Fatalf("bare: %v", bare)
	}
	if v := bare.Check(mqttConnectBytes("anything")); v.Outcome != appid.Pass {
		t.Errorf("bare, any client: %+v", v)
	}
	if v := bare.Check([]byte("GET / HTTP/1.1\r\n\r\n")); v.Outcome != appid.Mismatch {
		t.Errorf("bare, HTTP: %+v", v)
	}
}
