package spa

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/netip"
	"strconv"
)

// Limits and constants of the wire format (fwknop 2.6.10).
const (
	// MinPacket and MaxPacket bound an SPA packet's payload: anything
	// shorter cannot hold a message and its HMAC, anything longer is no
	// fwknop packet.
	MinPacket = 140
	MaxPacket = 1500
	// DefaultPort is fwknop's default destination, udp/62201.
	DefaultPort = 62201
	// CipherKeyLen is the length of an AES-256 key as `fwknop --key-gen`
	// prints it (base64 of 32 bytes).
	CipherKeyLen = 32
	// MinHMACKeyLen and MaxHMACKeyLen bound an HMAC key; --key-gen prints
	// 64 bytes.
	MinHMACKeyLen = 32
	MaxHMACKeyLen = 128
	// Version is the protocol version this package speaks.
	Version = "3.0.0"

	// saltedPrefix is base64("Salted__")'s first ten characters: clients
	// strip them from the wire and the HMAC covers them.
	saltedPrefix = "U2FsdGVkX1"
	hmacLen      = 43 // base64 of 32 bytes, "=" stripped
	digestLen    = 43 // base64 of a SHA-256 digest
	saltLen      = 8
)

// Errors of the decoder. Each names one way a packet is refused; callers
// use errors.Is.
var (
	ErrTooShort    = errors.New("spa: packet shorter than 140 bytes")
	ErrTooLong     = errors.New("spa: packet longer than 1500 bytes")
	ErrNotBase64   = errors.New("spa: packet is not base64")
	ErrSaltPrefix  = errors.New(`spa: packet starts with "U2FsdGVkX1", which clients strip`)
	ErrBadHMAC     = errors.New("spa: HMAC matches no key")
	ErrDecrypt     = errors.New("spa: ciphertext does not decrypt")
	ErrDigest      = errors.New("spa: message digest does not match")
	ErrMalformed   = errors.New("spa: malformed message")
	ErrVersion     = errors.New("spa: unsupported protocol version")
	ErrMessageType = errors.New("spa: message type not supported (only access requests)")
)

// Key is one named pair of keys as `fwknop --key-gen` prints them.
type Key struct {
	Name   string
	Cipher []byte // AES key, CipherKeyLen bytes
	HMAC   []byte // HMAC-SHA256 key
}

// MessageType is fwknop's message type field.
type MessageType uint8

// The message types of protocol 3.0.0. Only the access requests are
// granted; commands and NAT requests are refused.
const (
	TypeCommand              MessageType = 0
	TypeAccess               MessageType = 1
	TypeNATAccess            MessageType = 2
	TypeClientTimeoutAccess  MessageType = 3
	TypeClientTimeoutNAT     MessageType = 4
	TypeLocalNAT             MessageType = 5
	TypeClientTimeoutLocalNA MessageType = 6
)

// Service is one requested protocol and port ("tcp/22").
type Service struct {
	Proto uint8 // 6 or 17
	Port  uint16
}

// Message is a decoded SPA message.
type Message struct {
	User      string
	Timestamp int64 // unix seconds, the client's clock
	Type      MessageType
	// Addr is the address the client asks access for.
	Addr     netip.Addr
	Services []Service
	// ClientTimeout is the window the client asked for in seconds, 0 when
	// it asked for none.
	ClientTimeout int
	// Digest is the SHA-256 of the message: its identity in the replay
	// cache (a packet re-encrypted with another salt is the same message).
	Digest [32]byte
}

var b64 = base64.RawStdEncoding.Strict()

// Decoder decodes SPA packets. It keeps its buffers between packets; it is
// not safe for concurrent use.
type Decoder struct {
	raw   []byte // "U2FsdGVkX1" ‖ ciphertext's base64
	ct    []byte
	plain []byte
	fld   [12][]byte
}

// Verify checks data's length, alphabet and HMAC against each key in
// turn, and returns the index of the key whose HMAC matches. The HMAC is
// checked before anything is decrypted, and compared in constant time: a
// forged packet costs one HMAC per key and learns nothing from timing.
func (d *Decoder) Verify(data []byte, keys []*Key) (int, error) {
	switch {
	case len(data) < MinPacket:
		return -1, ErrTooShort
	case len(data) > MaxPacket:
		return -1, ErrTooLong
	case bytes.HasPrefix(data, []byte(saltedPrefix)):
		// A client always strips it; a packet carrying it was made by
		// something else (or is an attempt at a second parse of ours).
		return -1, ErrSaltPrefix
	}
	for _, c := range data {
		if !isBase64(c) {
			return -1, ErrNotBase64
		}
	}
	body, tag := data[:len(data)-hmacLen], data[len(data)-hmacLen:]
	d.raw = append(append(d.raw[:0], saltedPrefix...), body...)
	var sum [32]byte
	var enc [hmacLen]byte
	found := -1
	for i, k := range keys {
		m := hmac.New(sha256.New, k.HMAC)
		m.Write(d.raw)
		b64.Encode(enc[:], m.Sum(sum[:0]))
		// The tag is compared as text: a tag whose last character differs
		// only in base64's unused bits is another packet, and must not
		// pass as this one.
		if subtle.ConstantTimeCompare(enc[:], tag) == 1 && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return -1, ErrBadHMAC
	}
	return found, nil
}

func isBase64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}

// Open decrypts the packet Verify accepted with key k and decodes its
// message into m.
func (d *Decoder) Open(k *Key, m *Message) error {
	n := b64.DecodedLen(len(d.raw))
	if cap(d.ct) < n {
		d.ct = make([]byte, n)
	}
	ct := d.ct[:n]
	if _, err := b64.Decode(ct, d.raw); err != nil {
		return ErrNotBase64
	}
	if !bytes.HasPrefix(ct, []byte("Salted__")) || len(ct) < 8+saltLen+aes.BlockSize || (len(ct)-8-saltLen)%aes.BlockSize != 0 {
		return ErrDecrypt
	}
	salt, body := ct[8:8+saltLen], ct[8+saltLen:]
	key, iv := bytesToKey(k.Cipher, salt)
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return ErrDecrypt
	}
	if cap(d.plain) < len(body) {
		d.plain = make([]byte, len(body))
	}
	plain := d.plain[:len(body)]
	cipher.NewCBCDecrypter(block, iv[:]).CryptBlocks(plain, body)
	plain, ok := unpad(plain)
	if !ok {
		return ErrDecrypt
	}
	return d.parse(plain, m)
}

// bytesToKey is OpenSSL's EVP_BytesToKey with MD5 and one round, for a
// 32-byte key and a 16-byte IV: D1 = MD5(pass ‖ salt), Di = MD5(Di-1 ‖
// pass ‖ salt), key = D1 ‖ D2, iv = D3.
func bytesToKey(pass, salt []byte) (key [32]byte, iv [16]byte) {
	var out [48]byte
	var prev []byte
	for i := 0; i < 3; i++ {
		h := md5.New()
		h.Write(prev)
		h.Write(pass)
		h.Write(salt)
		prev = h.Sum(out[i*16 : i*16])
	}
	copy(key[:], out[:32])
	copy(iv[:], out[32:])
	return key, iv
}

// unpad strips PKCS#7 padding, checking every padding byte.
func unpad(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	n := int(b[len(b)-1])
	if n == 0 || n > aes.BlockSize || n > len(b) {
		return nil, false
	}
	for _, c := range b[len(b)-n:] {
		if int(c) != n {
			return nil, false
		}
	}
	return b[:len(b)-n], true
}

// parse reads the fields of a decrypted message and checks its digest.
func (d *Decoder) parse(plain []byte, m *Message) error {
	*m = Message{}
	cut := bytes.LastIndexByte(plain, ':')
	if cut < 0 || len(plain)-cut-1 != digestLen {
		return ErrMalformed
	}
	m.Digest = sha256.Sum256(plain[:cut])
	var enc [digestLen]byte
	b64.Encode(enc[:], m.Digest[:])
	if subtle.ConstantTimeCompare(enc[:], plain[cut+1:]) != 1 {
		return ErrDigest
	}
	f := d.fld[:0]
	for rest := plain[:cut]; ; {
		i := bytes.IndexByte(rest, ':')
		if len(f) == cap(f) {
			return ErrMalformed
		}
		if i < 0 {
			f = append(f, rest)
			break
		}
		f = append(f, rest[:i])
		rest = rest[i+1:]
	}
	return parseFields(f, m)
}

// parseFields reads rand : user : timestamp : version : type : access
// [: nat] [: server_auth] [: client_timeout]. Which optional fields are
// present follows from the type and the field count.
func parseFields(f [][]byte, m *Message) error {
	if len(f) < 6 || len(f[0]) != 16 || !digits(f[0]) {
		return ErrMalformed
	}
	user, err := unb64(f[1])
	if err != nil || len(user) == 0 || len(user) > 64 {
		return ErrMalformed
	}
	m.User = string(user)
	if !digits(f[2]) || len(f[2]) > 12 {
		return ErrMalformed
	}
	m.Timestamp, _ = strconv.ParseInt(string(f[2]), 10, 64)
	if string(f[3]) != Version {
		return ErrVersion
	}
	if len(f[4]) != 1 || f[4][0] < '0' || f[4][0] > '6' {
		return ErrMalformed
	}
	m.Type = MessageType(f[4][0] - '0')
	if m.Type != TypeAccess && m.Type != TypeClientTimeoutAccess {
		return ErrMessageType
	}
	access, err := unb64(f[5])
	if err != nil {
		return ErrMalformed
	}
	if err := parseAccess(access, m); err != nil {
		return err
	}
	rest := f[6:]
	if m.Type == TypeClientTimeoutAccess {
		if len(rest) == 0 {
			return ErrMalformed
		}
		t := rest[len(rest)-1]
		if !digits(t) || len(t) > 6 {
			return ErrMalformed
		}
		m.ClientTimeout, _ = strconv.Atoi(string(t))
		rest = rest[:len(rest)-1]
	}
	// What remains can only be a server_auth field, which picoseg does
	// not use: a request that asks for it is refused rather than granted
	// without it.
	if len(rest) > 0 {
		return ErrMalformed
	}
	return nil
}

// parseAccess reads "ADDR,proto/port[,proto/port...]".
func parseAccess(s []byte, m *Message) error {
	addr, rest, ok := bytes.Cut(s, []byte(","))
	if !ok {
		return ErrMalformed
	}
	a, err := netip.ParseAddr(string(addr))
	if err != nil {
		return ErrMalformed
	}
	m.Addr = a.Unmap()
	for more := true; more; {
		var p []byte
		p, rest, more = bytes.Cut(rest, []byte(","))
		if len(m.Services) == 16 {
			return ErrMalformed
		}
		proto, port, ok := bytes.Cut(p, []byte("/"))
		if !ok || !digits(port) || len(port) > 5 {
			return ErrMalformed
		}
		var svc Service
		switch string(proto) {
		case "tcp":
			svc.Proto = 6
		case "udp":
			svc.Proto = 17
		default:
			return ErrMalformed
		}
		n, _ := strconv.Atoi(string(port))
		if n < 1 || n > 65535 {
			return ErrMalformed
		}
		svc.Port = uint16(n)
		m.Services = append(m.Services, svc)
	}
	return nil
}

func unb64(s []byte) ([]byte, error) {
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(s)))
	n, err := base64.RawStdEncoding.Decode(out, s)
	return out[:n], err
}

func digits(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
