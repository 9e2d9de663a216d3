package appid

// ModbusConfig is a Modbus/TCP rule: which functions and unit ids a
// client's requests may use.
type ModbusConfig struct {
	// AnyFunction allows every function code; otherwise the read
	// functions (ModbusReads) and Writes are allowed.
	AnyFunction bool
	// Writes are the allowed function codes beyond the reads.
	Writes []uint8
	// Units are the allowed unit identifiers; empty allows any.
	Units []uint8
}

// ModbusReads are the function codes a read-only rule allows: they read
// and change nothing on the device.
//
//	1 read coils, 2 read discrete inputs, 3 read holding registers,
//	4 read input registers, 7 read exception status, 11 get comm event
//	counter, 12 get comm event log, 17 report server id, 20 read file
//	record, 24 read FIFO queue, 43 with MEI type 14 (read device
//	identification).
//
// Not reads: 8 (diagnostics: its sub-functions restart the device's
// communications, force listen-only mode, clear counters), 43 with MEI
// type 13 (CANopen general reference, which writes), and 5, 6, 15, 16,
// 21, 22, 23 (writes; 23 reads and writes at once).
var ModbusReads = [...]uint8{1, 2, 3, 4, 7, 11, 12, 17, 20, 24, 43}

// Modbus/TCP framing (MBAP header: transaction, protocol, length, unit).
const (
	mbapHeader = 7
	// ModbusMaxADU is the largest Modbus/TCP message: the 7-byte MBAP
	// header and a PDU of at most 253 bytes.
	ModbusMaxADU     = 260
	modbusMEI        = 43
	modbusMEIReadID  = 14
	modbusMaxLenWord = 254 // unit id + PDU
)

// ModbusChecker identifies Modbus/TCP by its MBAP framing and checks every
// request of the flow, one ADU per call.
type ModbusChecker struct {
	functions [4]uint64 // bit set over function codes 0..255
	units     [4]uint64 // bit set over unit ids
	// anyMEI allows function 43 with every MEI type, not only 14.
	anyMEI bool
}

// NewModbus returns the checker for cfg.
func NewModbus(cfg ModbusConfig) *ModbusChecker {
	c := &ModbusChecker{}
	for f := 1; f < 128; f++ {
		if cfg.AnyFunction {
			set(&c.functions, uint8(f))
		}
	}
	for _, f := range ModbusReads {
		set(&c.functions, f)
	}
	for _, f := range cfg.Writes {
		set(&c.functions, f)
		c.anyMEI = c.anyMEI || f == modbusMEI
	}
	c.anyMEI = c.anyMEI || cfg.AnyFunction
	if len(cfg.Units) == 0 {
		c.units = [4]uint64{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
	}
	for _, u := range cfg.Units {
		set(&c.units, u)
	}
	return c
}

func set(b *[4]uint64, v uint8)      { b[v>>6] |= 1 << (v & 63) }
func has(b *[4]uint64, v uint8) bool { return b[v>>6]&(1<<(v&63)) != 0 }

// Proto returns Modbus.
func (*ModbusChecker) Proto() Proto { return Modbus }

// Stream returns true: Modbus/TCP runs over TCP.
func (*ModbusChecker) Stream() bool { return true }

// Lifelong returns true: a write may come at any point of the flow, so
// every request is judged.
func (*ModbusChecker) Lifelong() bool { return true }

// Check judges the request at the start of data; Used is its length. The
// function code is judged as soon as it is there, so a forbidden write is
// refused before its whole message arrives.
func (c *ModbusChecker) Check(data []byte) Verdict {
	if len(data) < mbapHeader+1 {
		return more
	}
	if data[2] != 0 || data[3] != 0 {
		return mismatch("not Modbus: protocol id is not 0")
	}
	n := int(data[4])<<8 | int(data[5])
	if n < 2 || n > modbusMaxLenWord {
		return mismatch("not Modbus: bad length")
	}
	unit, fn := data[6], data[7]
	v := Verdict{Outcome: Pass, Used: 6 + n, Code: int(fn)}
	switch {
	case fn == 0 || fn >= 128:
		// Exception codes are answers, never requests.
		return Verdict{Outcome: Mismatch, Reason: "not a Modbus request function", Code: int(fn)}
	case !has(&c.functions, fn):
		v.Outcome, v.Reason = Deny, "write function"
		return v
	case !has(&c.units, unit):
		v.Outcome, v.Reason = Deny, "unit not allowed"
		return v
	}
	if fn == modbusMEI && !c.anyMEI {
		if len(data) < mbapHeader+2 {
			return Verdict{Outcome: More, Code: int(fn)}
		}
		if n < 3 || data[8] != modbusMEIReadID {
			v.Outcome, v.Reason = Deny, "write function"
			return v
		}
	}
	if len(data) < 6+n {
		return Verdict{Outcome: More, Code: int(fn)}
	}
	return v
}

var _ Checker = (*ModbusChecker)(nil)
