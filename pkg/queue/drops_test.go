package queue

import (
	"strings"
	"testing"
)

func TestParseDrops(t *testing.T) {
	table := `  4199  1234     0 2  512     7     1 100 1
  4200  4321     3 2  512    10     2 999 1
  4201  4322     0 2  512     5     0 500 1
  4202  4323     0 2  512   100   100 500 1
garbage line
`
	got := parseDrops(strings.NewReader(table), 4200, 2)
	if got != (Drops{QueueFull: 15, Undelivered: 2}) {
		t.Fatalf("drops %+v, want queue full 15 and undelivered 2 (queues 4200 and 4201 only)", got)
	}
}
