package flowmem

import "testing"

func TestBytesPerFlowPlausible(t *testing.T) {
	// A flow's key and state alone are over 100 bytes; anything far below
	// means the measurement missed the table.
	if b := BytesPerFlow(20000); b < 100 || b > 4096 {
		t.Errorf("BytesPerFlow = %.0f, want 100..4096", b)
	}
}

// BenchmarkFlowTableBytes reports the heap per tracked flow of a table
// holding 100 000 flows (B/flow).
func BenchmarkFlowTableBytes(b *testing.B) {
	var v float64
	for i := 0; i < b.N; i++ {
		v = BytesPerFlow(100000)
	}
	b.ReportMetric(v, "B/flow")
}
