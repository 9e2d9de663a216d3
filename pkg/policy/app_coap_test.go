package policy

import (
	"testing"

	"github.com/picoseg/picoseg/pkg/appid"
)

// coapRequest is a confirmable request with the given Uri-Path segments
// (each shorter than 13 bytes).
func coapRequest(code byte, segs ...string) []byte {
	b := []byte{0x40, code, 0, 1}
	for i, s := range segs {
		delta := byte(0)
		if i == 0 {
			delta = appid.CoAPOptionUriPath
		}
		b = append(append(b, delta<<4|byte(len(s))), s...)
	}
	return b
}

func TestCompileCoAP(t *testing.T) {
	src := `
[[zone]]
name = "lan"
networks = ["10.88.0.0/24"]

[[allow]]
name = "sensors"
from = "any"
to = "any"
services = ["udp/5683"]
app = "coap"
[allow.coap]
methods = ["GET"]
paths = ["/sensors/*"]

[[allow]]
name = "bare"
from = "any"
to = "any"
services = ["udp/5684"]
app = "coap"
`
	p := compileTest(t, src)
	k, bare := p.Rules[0].App, p.Rules[1].App
	if k == nil || k.Proto() != appid.CoAP || !k.Lifelong() || k.Stream() {
		t.Fatalf("sensors: %v", k)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want appid.Outcome
	}{
		{"get sensor", coapRequest(appid.CoAPGet, "sensors", "temp"), appid.Pass},
		{"put sensor", coapRequest(appid.CoAPPut, "sensors", "temp"), appid.Deny},
		{"get elsewhere", coapRequest(appid.CoAPGet, "admin"), appid.Deny},
		{"not coap", []byte("hello"), appid.Mismatch},
	} {
		if v := k.Check(tc.data); v.Outcome != tc.want {
			t.Errorf("%s: %+v", tc.name, v)
		}
	}
	if bare == nil {
		t.Fatal("bare: no checker")
	}
	if v := bare.Check(coapRequest(appid.CoAPPost, "anything")); v.Outcome != appid.Pass {
		t.Errorf("bare, POST: %+v", v)
	}
}
