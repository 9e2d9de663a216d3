package daemon

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/picoseg/picoseg/pkg/alert"
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
