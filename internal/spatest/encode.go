// Package spatest builds SPA packets the way fwknop's client does, for
// tests and benchmarks that need more than the fixtures fwknop wrote: a
// fresh message per iteration, a chosen timestamp, a chosen access string.
// It is the decoder's inverse, written from the same wire facts; the
// decoder's own tests hold it to the packets the real client wrote.
package spatest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

var b64 = base64.RawStdEncoding

// Message is what a packet asks for.
type Message struct {
	User      string
	Timestamp int64
	// Access is "ADDR,proto/port[,...]".
	Access string
	// ClientTimeout, when set, makes the message a client-timeout access
	// request (type 3).
	ClientTimeout int
}

// Encode returns the SPA packet of m under the AES key and HMAC key, as
// fwknop 2.6.10 sends it.
func Encode(m Message, key, hmacKey []byte) []byte {
	var rnd [8]byte
	rand.Read(rnd[:])
	typ := 1
	fields := []string{
		fmt.Sprintf("%016d", uint64(rnd[0])<<40|uint64(rnd[1])<<32|uint64(rnd[2])<<24|uint64(rnd[3])<<16|uint64(rnd[4])<<8|uint64(rnd[5])),
		b64.EncodeToString([]byte(m.User)), fmt.Sprint(m.Timestamp), "3.0.0", "", b64.EncodeToString([]byte(m.Access)),
	}
	if m.ClientTimeout > 0 {
		typ = 3
		fields = append(fields, fmt.Sprint(m.ClientTimeout))
	}
	fields[4] = fmt.Sprint(typ)
	plain := strings.Join(fields, ":")
	sum := sha256.Sum256([]byte(plain))
	plain += ":" + b64.EncodeToString(sum[:])

	var salt [8]byte
	rand.Read(salt[:])
	k, iv := bytesToKey(key, salt[:])
	block, _ := aes.NewCipher(k)
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	padded := []byte(plain + strings.Repeat(string(rune(pad)), pad))
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
	raw := b64.EncodeToString(append(append([]byte("Salted__"), salt[:]...), ct...))
	mac := hmac.New(sha256.New, hmacKey)
	mac.Write([]byte(raw))
	return []byte(strings.TrimPrefix(raw, "U2FsdGVkX1") + b64.EncodeToString(mac.Sum(nil)))
}

func bytesToKey(pass, salt []byte) (key, iv []byte) {
	var out, prev []byte
	for len(out) < 48 {
		h := md5.New()
		h.Write(prev)
		h.Write(pass)
		h.Write(salt)
		prev = h.Sum(nil)
		out = append(out, prev...)
	}
	return out[:32], out[32:48]
}
