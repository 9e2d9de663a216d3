package load

import "testing"

func TestSeqRoundTrip(t *testing.T) {
	var b [64]byte
	for _, v := range []uint64{0, 1, 255, 1 << 40, ^uint64(0)} {
		putSeq(b[:], v)
		if got, ok := Seq(b[:]); !ok || got != v {
			t.Errorf("Seq(putSeq(%d)) = %d, %v", v, got, ok)
		}
	}
	if _, ok := Seq(b[:7]); ok {
		t.Error("a 7-byte datagram has no sequence number")
	}
}
