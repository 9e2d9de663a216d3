package load

// Ports the servers listen on (on the WAN host) and the benchmark policy
// allows.
const (
	PortFloodFirst = 9000 // TCP accept-and-reset servers, PortFloodFirst..+FloodPorts-1
	FloodPorts     = 8
	PortHTTP       = 9010 // a small request, a small response
	PortSink       = 9011 // reads until EOF
	PortUDPEcho    = 9100 // echoes each datagram
	PortUDPStream  = 9101 // the reload stream's sink (the harness listens)
	PortIperf3     = 5201
)

// SourcePortFirst and SourcePortLast bound the source ports the new-flow
// clients take, split evenly between their workers.
const (
	SourcePortFirst = 10000
	SourcePortLast  = 60999
)

// FloodResult is what a new-flow client reports.
type FloodResult struct {
	// TCP and UDP count flows that got their answer: a TCP handshake, or
	// a UDP echo.
	TCP     uint64  `json:"tcp"`
	UDP     uint64  `json:"udp"`
	Failed  uint64  `json:"failed"`
	Seconds float64 `json:"seconds"`
	// Errors counts the failed flows by error.
	Errors map[string]uint64 `json:"errors,omitempty"`
}

// LatencyResult holds the connect times of sequential TCP connections.
type LatencyResult struct {
	Micros []float64 `json:"micros"`
	Failed int       `json:"failed"`
}

// CountResult counts flows that completed and failed.
type CountResult struct {
	Completed int   `json:"completed"`
	Failed    int   `json:"failed"`
	Bytes     int64 `json:"bytes"`
}

// StreamResult is what the sequence stream sent.
type StreamResult struct {
	Sent uint64 `json:"sent"`
}

func putSeq(b []byte, seq uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(seq >> (56 - 8*i))
	}
}

// Seq reads the sequence number of a stream datagram.
func Seq(b []byte) (uint64, bool) {
	if len(b) < 8 {
		return 0, false
	}
	var v uint64
	for i := 0; i < 8; i++ {
		v = v<<8 | uint64(b[i])
	}
	return v, true
}
