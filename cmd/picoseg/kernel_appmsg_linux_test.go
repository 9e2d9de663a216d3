package main

// Kernel tests of the MQTT and CoAP application constraints with real
// clients and servers: mosquitto and mosquitto_pub, libcoap's coap-server
// and coap-client. Each attack is first shown to go through the lab
// without picoseg (the control), then refused with picoseg running.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/internal/lab"
)

const msgBroker = "198.51.100.2"

// needTools skips unless every named program is installed.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("integration test: %s not installed", n)
		}
	}
}

// mosquitto runs a broker on the WAN host and a subscriber to every topic
// beside it; the subscriber's output is what reached the broker.
func (f *fixture) mosquitto() (sub *lab.Process) {
	f.t.Helper()
	conf := filepath.Join(f.dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte("listener 1883 0.0.0.0\nallow_anonymous true\npersistence false\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
	wan := f.lab.Host("wan")
	broker, err := wan.Start(f.ctx, "mosquitto", "-c", conf)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { broker.Stop() })
	if !eventually(func() bool {
		return wan.TCPConnect(f.ctx, netip.MustParseAddrPort("127.0.0.1:1883"), time.Second) == nil
	}) {
		f.t.Fatalf("mosquitto never listened:\n%s", broker.Output())
	}
	sub, err = wan.Start(f.ctx, "stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-t", "#", "-v")
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { sub.Stop() })
	// The subscriber is in place once it hears a message of its own.
	if !eventually(func() bool {
		wan.Run(f.ctx, "mosquitto_pub", "-h", "127.0.0.1", "-t", "ready", "-m", "1")
		return strings.Contains(sub.Output(), "ready 1")
	}) {
		f.t.Fatalf("subscriber not ready: %s", sub.Output())
	}
	return sub
}

// publish runs mosquitto_pub on host at QoS 1 (it waits for the broker's
// PUBACK) and reports whether it said it published.
func (f *fixture) publish(host, clientID, topic, msg string) bool {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 6*time.Second)
	defer cancel()
	out, err := f.lab.Host(host).Run(ctx, "mosquitto_pub", "-h", msgBroker, "-i", clientID, "-t", topic, "-m", msg, "-q", "1")
	if err != nil {
		f.t.Logf("mosquitto_pub -i %s -t %s: %v %s", clientID, topic, err, strings.TrimSpace(out))
	}
	return err == nil
}

// heard reports whether the subscriber got msg on topic within a while.
func heard(sub *lab.Process, topic, msg string, wait time.Duration) bool {
	for end := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
		if strings.Contains(sub.Output(), topic+" "+msg) {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// reached reports whether msg on topic reached the broker, for the
// messages that must not: it first publishes a marker from the broker's
// own host and waits for the subscriber to print it. The broker forwards
// in the order it receives, so anything that got through is printed
// before the marker.
func (f *fixture) reached(sub *lab.Process, topic, msg string) bool {
	f.t.Helper()
	marker := fmt.Sprintf("sync-%d", time.Now().UnixNano())
	if !eventually(func() bool {
		f.lab.Host("wan").Run(f.ctx, "mosquitto_pub", "-h", "127.0.0.1", "-t", "sync", "-m", marker)
		return heard(sub, "sync", marker, 500*time.Millisecond)
	}) {
		f.t.Fatalf("the subscriber did not print the marker: %s", sub.Output())
	}
	return strings.Contains(sub.Output(), topic+" "+msg)
}

// mqttBytes builds MQTT 3.1.1 packets for the hand-written client.
func mqttBytes(first byte, parts ...[]byte) []byte {
	var body []byte
	for _, p := range parts {
		body = append(body, p...)
	}
	out := []byte{first}
	for n := len(body); ; {
		c := byte(n & 0x7f)
		if n >>= 7; n > 0 {
			c |= 0x80
		}
		out = append(out, c)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

func mqttUTF(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

// denied waits for the app_denied alert of rule whose checker reason is
// detail and, unless code is -1, whose code is code.
func (f *fixture) denied(rule, detail string, code int) bool {
	f.t.Helper()
	_, ok := f.appAlert("app_denied", rule, func(a appAlertJSON) bool {
		return a.AppDetail == detail && (code == -1 || a.AppCode != nil && *a.AppCode == code)
	})
	return ok
}

const mqttRule = `
[[allow]]
name = "cam-mqtt"
from = "group:cameras"
to = "zone:wan"
services = ["tcp/1883"]
app = "mqtt"
[allow.mqtt]
client_ids = ["cam-*"]
publish = ["cam/+/status"]
subscribe = ["cmd/cam/#"]
`

// TestKernelMQTTTopics: a camera may publish to cam/<id>/status under its
// client id; a publish to another topic, one under another client id, and
// a forbidden PUBLISH pipelined behind an allowed one in one segment or
// split over two, never reach the broker. Control: before picoseg runs,
// the lab carries the forbidden publish to the broker.
func TestKernelMQTTTopics(t *testing.T) {
	needTools(t, "mosquitto", "mosquitto_pub", "mosquitto_sub")
	f := newFixture(t)
	sub := f.mosquitto()
	if !f.publish("cam", "cam-1", "cam/1/config", "control") || !heard(sub, "cam/1/config", "control", 3*time.Second) {
		t.Fatalf("control: without picoseg the lab did not carry the publish: %s", sub.Output())
	}
	f.willAttack("will-control")
	if !heard(sub, "cam/3/config", "will-control", 3*time.Second) {
		t.Fatalf("control: without picoseg the broker did not publish the will: %s", sub.Output())
	}
	f.start(labPolicy(t, func(s string) string { return s + mqttRule }))

	before := queued(f.status())
	if !f.publish("cam", "cam-1", "cam/1/status", "allowed") || !heard(sub, "cam/1/status", "allowed", 3*time.Second) {
		t.Errorf("the allowed publish did not reach the broker: %s", sub.Output())
	}
	t.Logf("one mosquitto_pub session under a topic rule: %d packets to userspace", queued(f.status())-before)
	if f.publish("cam", "cam-1", "cam/1/config", "evil") || f.reached(sub, "cam/1/config", "evil") {
		t.Error("a publish to a forbidden topic reached the broker")
	}
	if f.publish("cam", "plug-1", "cam/1/status", "wrong-id") || f.reached(sub, "cam/1/status", "wrong-id") {
		t.Error("a client id outside cam-* published")
	}
	if !f.denied("cam-mqtt", "publish topic not allowed", 3) {
		t.Error("no app_denied alert for the forbidden topic")
	}

	// A hand-written client: CONNECT, an allowed PUBLISH and a forbidden
	// one in one write (one segment), then the same split mid-topic.
	connect := mqttBytes(0x10, mqttUTF("MQTT"), []byte{4, 2, 0, 60}, mqttUTF("cam-2"))
	ok := mqttBytes(0x30, mqttUTF("cam/2/status"), []byte("pipelined-ok"))
	bad := mqttBytes(0x30, mqttUTF("cam/2/config"), []byte("pipelined-evil"))
	for i, writes := range [][][]byte{
		{append(append(append([]byte{}, connect...), ok...), bad...)},
		{append(append([]byte{}, connect...), ok...), bad[:7], bad[7:]},
	} {
		c, err := f.lab.Host("cam").Dial(f.ctx, "tcp", msgBroker+":1883")
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range writes {
			c.Write(w)
			time.Sleep(300 * time.Millisecond)
		}
		c.Close()
		if f.reached(sub, "cam/2/config", "pipelined-evil") {
			t.Errorf("case %d: the forbidden PUBLISH behind an allowed one reached the broker", i)
		}
	}
	f.willAttack("will-evil")
	time.Sleep(time.Second) // the broker publishes a will once it sees the connection close
	if f.reached(sub, "cam/3/config", "will-evil") {
		t.Error("the broker published a will on a forbidden topic")
	}
	if !heard(sub, "cam/2/status", "pipelined-ok", time.Second) {
		t.Error("the split case's allowed PUBLISH, sent in its own segment, did not reach the broker")
	}
}

// TestKernelMQTTClientID: under a rule on the client id alone, the flow is
// judged by its CONNECT and fast-pathed: any topic passes for cam-*, and
// nothing for another id. Control: before picoseg runs, the other id
// publishes.
func TestKernelMQTTClientID(t *testing.T) {
	needTools(t, "mosquitto", "mosquitto_pub", "mosquitto_sub")
	f := newFixture(t)
	sub := f.mosquitto()
	if !f.publish("cam", "plug-1", "any/topic", "control") || !heard(sub, "any/topic", "control", 3*time.Second) {
		t.Fatalf("control: without picoseg the lab did not carry the publish: %s", sub.Output())
	}
	f.start(labPolicy(t, func(s string) string {
		return s + `
[[allow]]
name = "cam-mqtt"
from = "group:cameras"
to = "zone:wan"
services = ["tcp/1883"]
app = "mqtt"
[allow.mqtt]
client_ids = ["cam-*"]
`
	}))
	before := queued(f.status())
	if !f.publish("cam", "cam-1", "any/topic", "allowed") || !heard(sub, "any/topic", "allowed", 3*time.Second) {
		t.Errorf("the allowed client's publish did not reach the broker: %s", sub.Output())
	}
	t.Logf("one mosquitto_pub session under a client-id rule: %d packets to userspace", queued(f.status())-before)
	if f.publish("cam", "plug-1", "any/topic", "wrong-id") || f.reached(sub, "any/topic", "wrong-id") {
		t.Error("a client id outside cam-* published")
	}
	if !f.denied("cam-mqtt", "client id not allowed", 1) {
		t.Error("no app_denied alert for the client id")
	}
}

// subscribed starts mosquitto_sub on the camera (MQTT 5.0) for filter and
// publishes msg on topic from the broker's host until the camera's client
// prints it or a few seconds pass; it reports whether it did.
func (f *fixture) subscribed(clientID, filter, topic, msg string) bool {
	f.t.Helper()
	sub, err := f.lab.Host("cam").Start(f.ctx, "stdbuf", "-oL", "mosquitto_sub", "-V", "mqttv5", "-h", msgBroker, "-i", clientID, "-t", filter, "-C", "1", "-W", "6")
	if err != nil {
		f.t.Fatal(err)
	}
	defer sub.Stop()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		f.lab.Host("wan").Run(f.ctx, "mosquitto_pub", "-h", "127.0.0.1", "-t", topic, "-m", msg)
		if strings.Contains(sub.Output(), msg) {
			return true
		}
	}
	return false
}

// TestKernelMQTTSubscribe: with a 5.0 client, a camera subscribed within
// cmd/cam/# gets its commands; one that subscribes to # is cut before
// the broker sends it anything. Control: without picoseg, # brings it
// another device's messages.
func TestKernelMQTTSubscribe(t *testing.T) {
	needTools(t, "mosquitto", "mosquitto_pub", "mosquitto_sub")
	f := newFixture(t)
	f.mosquitto()
	if !f.subscribed("cam-1", "#", "plug/1/secret", "control") {
		t.Fatal("control: without picoseg the camera's subscription to # got nothing")
	}
	f.start(labPolicy(t, func(s string) string { return s + mqttRule }))
	if !f.subscribed("cam-1", "cmd/cam/1", "cmd/cam/1", "reboot") {
		t.Error("the allowed subscription got nothing")
	}
	if f.subscribed("cam-1", "#", "plug/1/secret", "leak") {
		t.Error("a subscription to # under subscribe = [\"cmd/cam/#\"] got another device's message")
	}
	if !f.denied("cam-mqtt", "subscribe filter not allowed", 8) {
		t.Error("no app_denied alert for the subscription")
	}
}

// willAttack connects as cam-3 with a will on the forbidden topic
// cam/3/config and drops the connection without a DISCONNECT: a broker
// that accepted the CONNECT publishes the will.
func (f *fixture) willAttack(msg string) {
	f.t.Helper()
	c, err := f.lab.Host("cam").Dial(f.ctx, "tcp", msgBroker+":1883")
	if err != nil {
		f.t.Fatal(err)
	}
	c.Write(mqttBytes(0x10, mqttUTF("MQTT"), []byte{4, 0x02 | 0x04, 0, 60}, mqttUTF("cam-3"), mqttUTF("cam/3/config"), mqttUTF(msg)))
	time.Sleep(500 * time.Millisecond)
	c.Close()
}

// coapClient runs libcoap's client on host and returns what it printed.
func (f *fixture) coapClient(host, method, path, payload string) string {
	f.t.Helper()
	args := []string{"-B", "3", "-m", method}
	if payload != "" {
		args = append(args, "-e", payload)
	}
	args = append(args, fmt.Sprintf("coap://%s%s", msgBroker, path))
	ctx, cancel := context.WithTimeout(f.ctx, 8*time.Second)
	defer cancel()
	out, err := f.lab.Host(host).Run(ctx, "coap-client-notls", args...)
	if err != nil {
		f.t.Logf("coap-client %s %s: %v", method, path, err)
	}
	return strings.TrimSpace(out)
}

// TestKernelCoAPMethods: under a rule allowing GET only, a camera reads the
// server's example_data; its PUT and POST never reach the server (its
// debug log lists every request it receives, and example_data keeps its
// value). Control: before picoseg runs, the same PUT reaches it and
// changes the value.
func TestKernelCoAPMethods(t *testing.T) {
	needTools(t, "coap-server-notls", "coap-client-notls")
	f := newFixture(t)
	// The server's debug log names every request it receives; line
	// buffered, so that it is written as requests come.
	srv, err := f.lab.Host("wan").Start(f.ctx, "stdbuf", "-oL", "-eL", "coap-server-notls", "-v", "7", "-A", msgBroker, "-p", "5683")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	received := func(method string) int { return strings.Count(srv.Output(), "c:"+method+" ") }
	// synced returns once the server has logged a GET of its own host's,
	// sent after everything before it: the log then holds what came
	// earlier.
	synced := func() {
		t.Helper()
		n := received("GET")
		if !eventually(func() bool { f.coapClient("wan", "get", "/time", ""); return received("GET") > n }) {
			t.Fatalf("the server's log did not show a GET: %s", srv.Output())
		}
	}
	if !eventually(func() bool {
		return strings.Contains(f.coapClient("wan", "get", "/.well-known/core", ""), "example_data")
	}) {
		t.Fatalf("coap-server never answered: %s", srv.Output())
	}
	f.coapClient("cam", "put", "/example_data", "control")
	synced()
	if got := f.coapClient("wan", "get", "/example_data", ""); !strings.Contains(got, "control") || received("PUT") != 1 {
		t.Fatalf("control: without picoseg the camera's PUT did not reach the server: %q, %d PUTs", got, received("PUT"))
	}
	f.start(labPolicy(t, func(s string) string {
		return s + `
[[allow]]
name = "cam-coap"
from = "group:cameras"
to = "zone:wan"
services = ["udp/5683"]
app = "coap"
[allow.coap]
methods = ["GET"]
paths = ["/example_data", "/time", "/.well-known/core"]
`
	}))
	before := queued(f.status())
	if got := f.coapClient("cam", "get", "/example_data", ""); !strings.Contains(got, "control") {
		t.Errorf("the allowed GET got %q", got)
	}
	t.Logf("one coap-client GET: %d packets to userspace", queued(f.status())-before)
	f.coapClient("cam", "put", "/example_data", "evil-put")
	f.coapClient("cam", "post", "/example_data", "evil-post")
	synced()
	if n, m := received("PUT"), received("POST"); n != 1 || m != 0 {
		t.Errorf("under a GET-only rule the server received %d more PUTs and %d POSTs", n-1, m)
	}
	if got := f.coapClient("wan", "get", "/example_data", ""); !strings.Contains(got, "control") {
		t.Errorf("a PUT under a GET-only rule changed example_data to %q", got)
	}
	if !f.denied("cam-coap", "method not allowed", -1) {
		t.Error("no app_denied alert for the refused requests")
	}
}
