package load

// ClientHello is a TLS 1.2 ClientHello record asking for name: what the
// application-identity rows send as each flow's first bytes.
func ClientHello(name string) []byte {
	n := len(name)
	sni := []byte{0, 0, byte((n + 5) >> 8), byte(n + 5), byte((n + 3) >> 8), byte(n + 3), 0, byte(n >> 8), byte(n)}
	sni = append(sni, name...)
	body := append([]byte{3, 3}, make([]byte, 32)...)
	body = append(body, 0)                         // session id
	body = append(body, 0, 4, 0xc0, 0x2f, 0x13, 1) // two cipher suites
	body = append(body, 1, 0)                      // null compression
	body = append(body, byte(len(sni)>>8), byte(len(sni)))
	body = append(body, sni...)
	msg := append([]byte{1, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{22, 3, 1, byte(len(msg) >> 8), byte(len(msg))}, msg...)
}
