package harness

import (
	"strings"
	"time"
)

// lastTook returns the took= field of the last "policy reloaded" log line.
func lastTook(out string) (time.Duration, bool) {
	i := strings.LastIndex(out, "policy reloaded")
	if i < 0 {
		return 0, false
	}
	line := out[i:]
	if j := strings.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "took="); ok {
			d, err := time.ParseDuration(v)
			return d, err == nil
		}
	}
	return 0, false
}
