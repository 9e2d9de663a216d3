package config

// ModbusRule is [allow.modbus]: which Modbus/TCP requests a flow may make.
// Reads are always allowed; a write function is allowed only when listed
// in Writes (or when ReadOnly is false and Writes is empty: any function).
type ModbusRule struct {
	// ReadOnly allows the read functions only (plus Writes). It is true
	// unless written false.
	ReadOnly bool
	// Writes are the write (or other non-read) function codes allowed.
	Writes []uint8
	// Units are the allowed unit identifiers; empty: any.
	Units []uint8
	Pos   Pos
}

func decodeModbusRule(t table, r *AppRule) {
	t.checkKeys("read_only", "writes", "units")
	mr := &ModbusRule{ReadOnly: true, Pos: t.Pos()}
	if b, ok := t.boolean("read_only"); ok {
		mr.ReadOnly = b
	}
	mr.Writes = t.byteList("writes", 1, 127)
	mr.Units = t.byteList("units", 0, 255)
	if !mr.ReadOnly && len(mr.Writes) > 0 {
		t.errorf(t.valuePos("read_only"), "read_only = false allows every function: writes would narrow nothing; leave one of them out")
	}
	r.Modbus = mr
}

// byteList reads an array of integers, each in lo..hi.
func (t table) byteList(key string, lo, hi int64) []uint8 {
	n, present := t.n.fields[key]
	if !present {
		return nil
	}
	if n.kind != nodeArray {
		t.wrongType(key, "array of integers", n)
		return nil
	}
	if len(n.elems) == 0 {
		t.errorf(t.valuePos(key), "%s is empty; leave it out for no constraint", key)
	}
	var out []uint8
	for i, e := range n.elems {
		v, ok := e.scalar.(int64)
		if !ok || v < lo || v > hi {
			t.errorf(t.doc.at(e.val), "%s[%d]: want an integer from %d to %d", key, i, lo, hi)
			continue
		}
		out = append(out, uint8(v))
	}
	return out
}
