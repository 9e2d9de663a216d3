package appid

import "testing"

func TestProtoNamesRoundTrip(t *testing.T) {
	for p := TLS; p < protoCount; p++ {
		got, ok := ParseProto(p.String())
		if !ok || got != p {
			t.Errorf("ParseProto(%q) = %v, %v; want %v, true", p.String(), got, ok, p)
		}
	}
	for _, s := range []string{"", "TLS", "https", "unknown", "modbus "} {
		if p, ok := ParseProto(s); ok {
			t.Errorf("ParseProto(%q) = %v, true; want false", s, p)
		}
	}
	if None.String() != "" || Proto(200).String() != "unknown" {
		t.Errorf("None = %q, Proto(200) = %q", None.String(), Proto(200).String())
	}
	want := map[Proto]string{TLS: "tls", HTTP: "http", DNS: "dns", MQTT: "mqtt", CoAP: "coap", Modbus: "modbus"}
	for p, s := range want {
		if p.String() != s {
			t.Errorf("%d.String() = %q, want %q", p, p.String(), s)
		}
	}
}
