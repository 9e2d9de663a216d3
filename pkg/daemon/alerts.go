package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
	"github.com/picoseg/picoseg/pkg/inventory"
)

// openAlerts starts the alert dispatcher with the policy's sinks. A sink
// whose receiver is down does not stop the daemon: it retries in the
// background and counts what it drops.
func openAlerts(l *Loaded, now func() time.Time, log *slog.Logger) (*alert.Dispatcher, error) {
	var sinks []*alert.Sink
	for _, c := range l.Sinks {
		s, err := alert.OpenSink(c, alert.SinkOptions{})
		if err != nil {
			for _, o := range sinks {
				o.Close(context.Background())
			}
			return nil, err
		}
		log.Info("alerts", "sink", c.Name())
		sinks = append(sinks, s)
	}
	a := l.Config.Alert
	return alert.New(alert.Options{Window: a.Window, ScanWindow: a.ScanWindow, ScanThreshold: a.ScanThreshold, Now: now}, sinks...), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// openInventory loads the device inventory. A corrupt state file is set
// aside and reported; the daemon starts with an empty inventory rather than
// not at all.
func openInventory(l *Loaded, stateOverride string, log *slog.Logger) (*inventory.Inventory, error) {
	c := l.Config.Inventory
	state := c.State
	if stateOverride != "" {
		state = stateOverride
	}
	if err := os.MkdirAll(filepath.Dir(state), 0o755); err != nil {
		return nil, err
	}
	inv, err := inventory.New(inventory.Options{Leases: c.Leases, UnknownGroup: c.UnknownGroup, StatePath: state})
	var corrupt *inventory.CorruptStateError
	if errors.As(err, &corrupt) {
		log.Warn("device inventory: starting empty", "err", err)
		err = nil
	}
	return inv, err
}
