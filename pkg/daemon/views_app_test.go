package daemon

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/engine"
	"github.com/picoseg/picoseg/pkg/packet"
	"github.com/picoseg/picoseg/pkg/policy"
)

// status flows shows the application a flow was identified as and the
// name it carried.
func TestFlowViewsShowApplication(t *testing.T) {
	cfg, _, err := config.Parse("app.toml", []byte(`
[[zone]]
name = "wan"
networks = ["0.0.0.0/0"]
[[zone]]
name = "iot"
networks = ["10.77.0.0/24"]
[[segment]]
from = "iot"
to = "wan"
action = "micro"
[[allow]]
name = "web"
from = "zone:iot"
to = "zone:wan"
services = ["tcp/80"]
app = "http"
`))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(pol, engine.Options{})
	w := eng.NewWorker()
	cli, srv := netip.MustParseAddr("10.77.0.5"), netip.MustParseAddr("198.51.100.7")
	tcp := func(fromClient bool, flags uint8, seq uint32, payload string) *packet.Packet {
		p := &packet.Packet{Kind: packet.KindOK, Proto: packet.ProtoTCP, Length: uint16(40 + len(payload)), TCPFlags: flags, Seq: seq, Payload: []byte(payload), PayloadLen: len(payload),
			Src: cli, Dst: srv, SrcPort: 40000, DstPort: 80}
		if !fromClient {
			p.Src, p.Dst, p.SrcPort, p.DstPort = srv, cli, 80, 40000
		}
		return p
	}
	now := time.Now()
	for i, p := range []*packet.Packet{
		tcp(true, packet.TCPSyn, 99, ""),
		tcp(false, packet.TCPSyn|packet.TCPAck, 5000, ""),
		tcp(true, packet.TCPAck, 100, "GET / HTTP/1.1\r\nHost: hue.example\r\n\r\n"),
	} {
		w.Judge(p, now.Add(time.Duration(i)*time.Millisecond).UnixNano(), engine.NoMeta)
	}
	views := flowViews(eng, now, "", 0)
	if len(views) != 1 || views[0].App != "http" || views[0].AppName != "hue.example" || views[0].Verdict != "accept" {
		t.Fatalf("views %+v", views)
	}
	var out bytes.Buffer
	if err := WriteFlows(&out, views); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "http hue.example") {
		t.Errorf("table:\n%s", out.String())
	}
}
