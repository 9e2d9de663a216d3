package appid

// Choice is what a checker does with a case the rule decides either way
// (a ClientHello without a server name, one offering Encrypted ClientHello).
type Choice uint8

const (
	// Refuse denies the case.
	Refuse Choice = iota
	// Admit allows it.
	Admit
)

// TLSConfig is a TLS rule: the server names a ClientHello may ask for.
type TLSConfig struct {
	// Names are the allowed server names; nil allows any.
	Names *NameSet
	// NoSNI decides a ClientHello without a server name, ECH one offering
	// Encrypted ClientHello (extension 0xfe0d).
	NoSNI, ECH Choice
}

// TLSChecker identifies TLS by the client's first handshake message and
// checks the server name it asks for.
type TLSChecker struct{ cfg TLSConfig }

// NewTLS returns the checker for cfg.
func NewTLS(cfg TLSConfig) *TLSChecker { return &TLSChecker{cfg: cfg} }

// Proto returns TLS.
func (*TLSChecker) Proto() Proto { return TLS }

// Stream returns true: TLS runs over TCP.
func (*TLSChecker) Stream() bool { return true }

// Lifelong returns false: the ClientHello decides the flow.
func (*TLSChecker) Lifelong() bool { return false }

// Check judges the start of the client's stream.
func (c *TLSChecker) Check(data []byte) Verdict { return mismatch("not implemented") }

var _ Checker = (*TLSChecker)(nil)
