package alert

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/picoseg/picoseg/pkg/engine"
)

// An app_denied alert names the application, what the check found and
// the function code, in its message and its JSON.
func TestAppAlertNamesFunctionCode(t *testing.T) {
	var e engine.Event
	e.Type, e.Layer, e.Reason, e.Rule, e.Proto, e.DPort = engine.EventAppDenied, engine.LayerPico, engine.ReasonAppDenied, "plc", 6, 502
	e.App = engine.EventApp{Proto: 6, Code: 6, Detail: "write function"} // appid.Modbus
	ty, ok := FromEvent(e.Type)
	if !ok || ty != TypeAppDenied {
		t.Fatalf("FromEvent = %v, %v", ty, ok)
	}
	a := fromEvent(&e, ty, time.Unix(1700000000, 0))
	msg := formatMessage(&a, 20, 0)
	if !strings.Contains(msg, "[modbus function 6: write function]") || !strings.Contains(msg, `rule "plc"`) {
		t.Errorf("message %q", msg)
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"app":"modbus"`) || !strings.Contains(string(b), `"app_code":6`) {
		t.Errorf("json %s", b)
	}
	var back Alert
	if err := json.Unmarshal(b, &back); err != nil || back.App != "modbus" || back.AppCode != 6 || back.AppDetail != "write function" {
		t.Errorf("back %+v, %v", back, err)
	}
}
