package appid

// ModbusConfig is a Modbus/TCP rule: which functions and unit ids a
// client's requests may use.
type ModbusConfig struct {
	// AnyFunction allows every function code; otherwise the read functions
	// and Writes are allowed.
	AnyFunction bool
	// Writes are the allowed function codes beyond the reads.
	Writes []uint8
	// Units are the allowed unit identifiers; empty allows any.
	Units []uint8
}

// ModbusChecker identifies Modbus/TCP by its MBAP framing and checks every
// request of the flow.
type ModbusChecker struct {
	functions [4]uint64 // bit set over function codes 0..255
	units     [4]uint64 // bit set over unit ids; all ones when any
}

// NewModbus returns the checker for cfg.
func NewModbus(cfg ModbusConfig) *ModbusChecker { return &ModbusChecker{} }

// Proto returns Modbus.
func (*ModbusChecker) Proto() Proto { return Modbus }

// Stream returns true: Modbus/TCP runs over TCP.
func (*ModbusChecker) Stream() bool { return true }

// Lifelong returns true: a write may come at any point of the flow.
func (*ModbusChecker) Lifelong() bool { return true }

// Check judges the requests at the start of data.
func (c *ModbusChecker) Check(data []byte) Verdict { return mismatch("not implemented") }

var _ Checker = (*ModbusChecker)(nil)
