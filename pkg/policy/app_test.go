package policy

import (
	"testing"

	"github.com/picoseg/picoseg/pkg/appid"
)

func TestCompileApp(t *testing.T) {
	src := `
[[zone]]
name = "lan"
networks = ["10.88.0.0/24"]

[[allow]]
name = "plain"
from = "any"
to = "any"
services = ["tcp/80"]

[[allow]]
name = "cloud"
from = "any"
to = "any"
services = ["tcp/443"]
app = "tls"
unidentified = "allow"
[allow.tls]
server_names = ["*.example.com"]

[[allow]]
name = "plc"
from = "any"
to = "any"
services = ["tcp/502"]
app = "modbus"
`
	p := compileTest(t, src)
	if p.Rules[0].App != nil {
		t.Errorf("rule without app has checker %T", p.Rules[0].App)
	}
	if c := p.Rules[1].App; c == nil || c.Proto() != appid.TLS || !p.Rules[1].AppAllowUnidentified || !p.Rules[1].Pico {
		t.Errorf("cloud: App %v, allow unidentified %v, pico %v", c, p.Rules[1].AppAllowUnidentified, p.Rules[1].Pico)
	}
	if c := p.Rules[2].App; c == nil || c.Proto() != appid.Modbus || !c.Lifelong() || p.Rules[2].AppAllowUnidentified {
		t.Errorf("plc: App %v, allow unidentified %v", c, p.Rules[2].AppAllowUnidentified)
	}
}
