package main

// Kernel tests of application identity with real clients: curl over TLS to
// a server the test starts, with an allowed and a forbidden server name;
// curl over HTTP with an allowed and a forbidden Host; a Modbus/TCP client
// whose reads pass and whose write (alone, or pipelined behind a read in
// one segment) never reaches the PLC. Each starts with a control: the lab
// delivers the forbidden traffic without picoseg.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/daemon"
)

// appPolicy is the lab policy with the camera's upload held to TLS for
// *.example.com, an HTTP API held to one host, and a PLC on the wan side
// that the camera may only read.
func appPolicy(t *testing.T) string {
	return labPolicy(t, func(s string) string {
		s = strings.Replace(s, `services = ["tcp/8443"]`, "services = [\"tcp/8443\"]\napp = \"tls\"\n[allow.tls]\nserver_names = [\"*.example.com\"]", 1)
		return s + `
[[allow]]
name = "cam-api"
from = "group:cameras"
to = "zone:wan"
services = ["tcp/8080"]
app = "http"
[allow.http]
hosts = ["api.example.com"]

[[allow]]
name = "cam-plc"
from = "group:cameras"
to = "zone:wan"
services = ["tcp/502"]
app = "modbus"
[allow.modbus]
read_only = true
`
	})
}

// selfSigned makes a certificate for names.
func selfSigned(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serveHTTP serves "ok" on the wan host's port, over TLS when cert is set.
func (f *fixture) serveHTTP(port int, cert *tls.Certificate) {
	f.t.Helper()
	ln, err := f.lab.Host("wan").Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		f.t.Fatal(err)
	}
	if cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}})
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	f.t.Cleanup(func() { srv.Close() })
}

// curl fetches url from the camera with name resolved to the wan host, and
// reports whether it got the server's "ok".
func (f *fixture) curl(name string, port int, scheme string) bool {
	f.t.Helper()
	url := fmt.Sprintf("%s://%s:%d/", scheme, name, port)
	out, err := f.lab.Host("cam").Run(f.ctx, "curl", "-sk", "--max-time", "3", "--resolve", fmt.Sprintf("%s:%d:198.51.100.2", name, port), url)
	if err != nil {
		f.t.Logf("curl %s: %v %s", url, err, out)
	}
	return err == nil && out == "ok"
}

// appAlert waits for an alert of typ from rule and returns it.
func (f *fixture) appAlert(typ, rule string, match func(a appAlertJSON) bool) (appAlertJSON, bool) {
	f.t.Helper()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		var alerts []appAlertJSON
		daemon.Query(f.sock, "alerts", &alerts)
		for _, a := range alerts {
			if a.Type == typ && a.Rule == rule && (match == nil || match(a)) {
				return a, true
			}
		}
	}
	return appAlertJSON{}, false
}

type appAlertJSON struct {
	Type      string `json:"type"`
	Rule      string `json:"rule"`
	App       string `json:"app"`
	AppName   string `json:"app_name"`
	AppCode   *int   `json:"app_code"`
	AppDetail string `json:"app_detail"`
	Message   string `json:"message"`
}

// TestKernelAppTLSServerName: curl reaches the camera's cloud under an
// allowed server name and is cut under another, with app_denied naming it;
// the identified flow then runs on the fast path.
func TestKernelAppTLSServerName(t *testing.T) {
	f := newFixture(t)
	cert := selfSigned(t, "upload.example.com", "evil.example.net")
	f.serveHTTP(8443, &cert)
	if !f.curl("evil.example.net", 8443, "https") {
		t.Fatal("control: without picoseg the lab does not deliver the forbidden name")
	}
	f.start(appPolicy(t))
	before := queued(f.status())
	if !f.curl("upload.example.com", 8443, "https") {
		t.Fatal("curl to an allowed server name failed")
	}
	t.Logf("userspace packets for one TLS flow (both ways, curl's whole exchange): %d", queued(f.status())-before)
	if f.curl("evil.example.net", 8443, "https") {
		t.Fatal("curl to a forbidden server name got through")
	}
	a, ok := f.appAlert("app_denied", "cam-upload", func(a appAlertJSON) bool { return a.AppName == "evil.example.net" })
	if !ok {
		t.Fatal("no app_denied alert naming evil.example.net")
	}
	t.Logf("alert: %s", a.Message)
	// Plain bytes on the TLS port are no TLS: a tunnel on an open port.
	c, err := f.lab.Host("cam").Dial(f.ctx, "tcp", "198.51.100.2:8443")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
	if _, ok := f.appAlert("app_mismatch", "cam-upload", nil); !ok {
		t.Error("no app_mismatch alert for a non-TLS stream on the TLS rule")
	}
}

// TestKernelAppHTTPHost: the Host header decides.
func TestKernelAppHTTPHost(t *testing.T) {
	f := newFixture(t)
	f.serveHTTP(8080, nil)
	if !f.curl("evil.example.net", 8080, "http") {
		t.Fatal("control: without picoseg the lab does not deliver the forbidden host")
	}
	f.start(appPolicy(t))
	before := queued(f.status())
	if !f.curl("api.example.com", 8080, "http") {
		t.Fatal("curl to the allowed host failed")
	}
	t.Logf("userspace packets for one HTTP flow (both ways, curl's whole exchange): %d", queued(f.status())-before)
	if f.curl("evil.example.net", 8080, "http") {
		t.Fatal("curl to a forbidden host got through")
	}
	if _, ok := f.appAlert("app_denied", "cam-api", func(a appAlertJSON) bool { return a.AppName == "evil.example.net:8080" }); !ok {
		t.Error("no app_denied alert naming the forbidden host")
	}
}

// plc is a Modbus/TCP server that answers reads and writes and counts the
// writes it received.
type plc struct {
	reads, writes atomic.Int64
}

func (f *fixture) startPLC() *plc {
	f.t.Helper()
	ln, err := f.lab.Host("wan").Listen("tcp", ":502")
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { ln.Close() })
	p := &plc{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *plc) serve(c net.Conn) {
	defer c.Close()
	for {
		hdr := make([]byte, 7)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		pdu := make([]byte, int(binary.BigEndian.Uint16(hdr[4:6]))-1)
		if _, err := io.ReadFull(c, pdu); err != nil || len(pdu) == 0 {
			return
		}
		var resp []byte
		switch pdu[0] {
		case 3:
			p.reads.Add(1)
			qty := int(binary.BigEndian.Uint16(pdu[3:5]))
			resp = append([]byte{3, byte(2 * qty)}, make([]byte, 2*qty)...)
		default:
			p.writes.Add(1)
			resp = pdu
		}
		out := append(append([]byte{}, hdr[:4]...), byte((len(resp)+1)>>8), byte(len(resp)+1), hdr[6])
		c.Write(append(out, resp...))
	}
}

func modbusRead(tid uint16) []byte {
	return []byte{byte(tid >> 8), byte(tid), 0, 0, 0, 6, 1, 3, 0, 0, 0, 2}
}

func modbusWrite(tid uint16) []byte {
	return []byte{byte(tid >> 8), byte(tid), 0, 0, 0, 6, 1, 6, 0, 1, 0, 42}
}

// exchange sends req and reports whether an answer came back.
func exchange(c net.Conn, req []byte) bool {
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(req); err != nil {
		return false
	}
	hdr := make([]byte, 7)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return false
	}
	_, err := io.ReadFull(c, make([]byte, int(binary.BigEndian.Uint16(hdr[4:6]))-1))
	return err == nil
}

// TestKernelAppModbusReadOnly: an HMI-like client reads, then writes: the
// reads are answered, the write never reaches the PLC, and app_denied names
// function 6. A write pipelined behind a read in one segment is cut too.
func TestKernelAppModbusReadOnly(t *testing.T) {
	f := newFixture(t)
	p := f.startPLC()
	dial := func() net.Conn {
		c, err := f.lab.Host("cam").Dial(f.ctx, "tcp", "198.51.100.2:502")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctrl := dial()
	if !exchange(ctrl, modbusRead(1)) || !exchange(ctrl, modbusWrite(2)) || p.writes.Load() != 1 {
		t.Fatalf("control: without picoseg the write does not reach the PLC (writes %d)", p.writes.Load())
	}
	ctrl.Close()
	f.start(appPolicy(t))
	p.writes.Store(0)

	before := queued(f.status())
	c := dial()
	for i := range 20 {
		if !exchange(c, modbusRead(uint16(10+i))) {
			t.Fatalf("read %d unanswered", i)
		}
	}
	t.Logf("userspace packets for a Modbus flow of 20 reads (both ways): %d", queued(f.status())-before)
	if exchange(c, modbusWrite(40)) {
		t.Error("the write was answered")
	}
	time.Sleep(200 * time.Millisecond)
	if n := p.writes.Load(); n != 0 {
		t.Fatalf("the PLC received %d writes", n)
	}
	a, ok := f.appAlert("app_denied", "cam-plc", func(a appAlertJSON) bool { return a.AppCode != nil && *a.AppCode == 6 })
	if !ok {
		t.Fatal("no app_denied alert naming function 6")
	}
	t.Logf("alert: %s", a.Message)

	// A write behind a read in one segment.
	c = dial()
	if !exchange(c, modbusRead(50)) {
		t.Fatal("read unanswered")
	}
	readsBefore := p.reads.Load()
	exchange(c, append(modbusRead(51), modbusWrite(52)...))
	time.Sleep(200 * time.Millisecond)
	if n := p.writes.Load(); n != 0 {
		t.Fatalf("the pipelined write reached the PLC (%d writes)", n)
	}
	if p.reads.Load() != readsBefore {
		t.Errorf("the segment holding the write was partly delivered")
	}
}
