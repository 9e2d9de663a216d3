package appid

// HTTPConfig is an HTTP rule: the hosts and methods a request may name.
type HTTPConfig struct {
	// Hosts are the allowed Host names; nil allows any.
	Hosts *NameSet
	// Methods are the allowed methods; empty allows any.
	Methods []string
}

// HTTPChecker identifies HTTP/1.x by the first request's line and headers
// and checks its Host and method.
type HTTPChecker struct{ cfg HTTPConfig }

// NewHTTP returns the checker for cfg.
func NewHTTP(cfg HTTPConfig) *HTTPChecker { return &HTTPChecker{cfg: cfg} }

// Proto returns HTTP.
func (*HTTPChecker) Proto() Proto { return HTTP }

// Stream returns true: HTTP runs over TCP.
func (*HTTPChecker) Stream() bool { return true }

// Lifelong returns false: the first request decides the flow.
func (*HTTPChecker) Lifelong() bool { return false }

// Check judges the start of the client's stream.
func (c *HTTPChecker) Check(data []byte) Verdict { return mismatch("not implemented") }

var _ Checker = (*HTTPChecker)(nil)
