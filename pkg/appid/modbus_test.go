package appid

import "testing"

// adu builds a Modbus/TCP request: transaction id tid, unit, function and
// data.
func adu(tid uint16, unit, fn byte, data ...byte) []byte {
	n := 2 + len(data)
	b := []byte{byte(tid >> 8), byte(tid), 0, 0, byte(n >> 8), byte(n), unit, fn}
	return append(b, data...)
}

func TestModbusRequests(t *testing.T) {
	readOnly := NewModbus(ModbusConfig{Units: []uint8{1}})
	writes := NewModbus(ModbusConfig{Writes: []uint8{6}})
	anyFn := NewModbus(ModbusConfig{AnyFunction: true})
	read := adu(1, 1, 3, 0, 0, 0, 10)
	tests := []struct {
		name   string
		c      *ModbusChecker
		data   []byte
		want   Outcome
		used   int
		code   int
		reason string
	}{
		{"read holding registers", readOnly, read, Pass, 12, 3, ""},
		{"read coils", readOnly, adu(2, 1, 1, 0, 0, 0, 8), Pass, 12, 1, ""},
		{"write single register", readOnly, adu(3, 1, 6, 0, 1, 0, 5), Deny, 12, 6, "write function"},
		{"write multiple coils", readOnly, adu(3, 1, 15, 0, 1, 0, 8, 1, 0xff), Deny, 14, 15, "write function"},
		{"read/write registers", readOnly, adu(3, 1, 23, 0, 1, 0, 1, 0, 1, 0, 1, 2, 0, 0), Deny, 19, 23, "write function"},
		{"diagnostics", readOnly, adu(3, 1, 8, 0, 1, 0, 0), Deny, 12, 8, "write function"},
		{"device identification", readOnly, adu(3, 1, 43, 14, 1, 0), Pass, 11, 43, ""},
		{"canopen reference", readOnly, adu(3, 1, 43, 13, 0, 0), Deny, 11, 43, "write function"},
		{"other unit", readOnly, adu(3, 2, 3, 0, 0, 0, 1), Deny, 12, 3, "unit not allowed"},
		{"listed write", writes, adu(3, 9, 6, 0, 1, 0, 5), Pass, 12, 6, ""},
		{"unlisted write", writes, adu(3, 9, 16, 0, 1, 0, 1, 2, 0, 5), Deny, 15, 16, "write function"},
		{"any function", anyFn, adu(3, 9, 16, 0, 1, 0, 1, 2, 0, 5), Pass, 15, 16, ""},
		{"write refused before its end", readOnly, adu(3, 1, 16, 0, 1, 0, 1, 2, 0, 5)[:8], Deny, 15, 16, "write function"},
		{"partial read", readOnly, read[:10], More, 0, 3, ""},
		{"protocol id", readOnly, []byte{0, 1, 0, 1, 0, 6, 1, 3, 0, 0, 0, 1}, Mismatch, 0, -1, "not Modbus: protocol id is not 0"},
		{"length too long", readOnly, []byte{0, 1, 0, 0, 1, 0, 1, 3}, Mismatch, 0, -1, "not Modbus: bad length"},
		{"exception code as request", readOnly, adu(1, 1, 0x83, 2), Mismatch, 0, 0x83, "not a Modbus request function"},
		{"http", readOnly, []byte("GET / HTTP/1.1\r\n"), Mismatch, 0, -1, "not Modbus: protocol id is not 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.c.Check(tc.data)
			if v.Outcome != tc.want || v.Reason != tc.reason || v.Code != tc.code || (tc.want != More && tc.want != Mismatch && v.Used != tc.used) {
				t.Errorf("Check = %v %q code %d used %d, want %v %q code %d used %d", v.Outcome, v.Reason, v.Code, v.Used, tc.want, tc.reason, tc.code, tc.used)
			}
		})
	}
}

// A write pipelined behind a read in one buffer is judged once the read is
// used: the checker judges one request per call, from its start.
func TestModbusPipelinedWrite(t *testing.T) {
	c := NewModbus(ModbusConfig{})
	data := append(adu(1, 1, 3, 0, 0, 0, 1), adu(2, 1, 5, 0, 1, 0xff, 0)...)
	v := c.Check(data)
	if v.Outcome != Pass || v.Used != 12 {
		t.Fatalf("first: %v used %d", v.Outcome, v.Used)
	}
	if v := c.Check(data[v.Used:]); v.Outcome != Deny || v.Code != 5 {
		t.Fatalf("second: %v code %d, want deny of function 5", v.Outcome, v.Code)
	}
}
