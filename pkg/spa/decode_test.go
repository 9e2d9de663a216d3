package spa

import (
	"encoding/base64"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/internal/spatest"
)

// The fixtures were written by Debian's fwknop-client 2.6.10:
//
//	fwknop --no-rc-file -T -B FILE -A tcp/22 -a 10.0.0.2 -D 10.0.0.1 \
//	    --key-base64-rijndael K --key-base64-hmac H --use-hmac -U alice
//
// with the keys of testdata/keys.txt (other.txt for otherkey.spa, and the
// other cipher key with keys.txt's HMAC key for samehmac.spa).
const (
	// fixtureTime is the timestamp access.spa carries.
	fixtureTime = 1796130993
)

func readKeys(t testing.TB, file, name string) *Key {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	k := &Key{Name: name}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "KEY_BASE64: "); ok {
			k.Cipher, err = base64.StdEncoding.DecodeString(v)
		}
		if v, ok := strings.CutPrefix(line, "HMAC_KEY_BASE64: "); ok {
			k.HMAC, err = base64.StdEncoding.DecodeString(v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return k
}

func readPacket(t testing.TB, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.TrimSpace(string(data)))
}

func TestDecodeFwknopPackets(t *testing.T) {
	k := readKeys(t, "keys.txt", "lab")
	for _, tc := range []struct {
		file     string
		user     string
		typ      MessageType
		services []Service
		timeout  int
	}{
		{"access.spa", "alice", TypeAccess, []Service{{6, 22}}, 0},
		{"timeout.spa", "bob", TypeClientTimeoutAccess, []Service{{6, 22}, {17, 5683}}, 45},
		{"stale.spa", "alice", TypeAccess, []Service{{6, 22}}, 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var d Decoder
			i, err := d.Verify(readPacket(t, tc.file), []*Key{k})
			if err != nil || i != 0 {
				t.Fatalf("Verify = %d, %v", i, err)
			}
			var m Message
			if err := d.Open(k, &m); err != nil {
				t.Fatalf("Open: %v", err)
			}
			if m.User != tc.user || m.Type != tc.typ || m.Addr != netip.MustParseAddr("10.0.0.2") || m.ClientTimeout != tc.timeout {
				t.Errorf("message %+v", m)
			}
			if len(m.Services) != len(tc.services) {
				t.Fatalf("services %v, want %v", m.Services, tc.services)
			}
			for i := range tc.services {
				if m.Services[i] != tc.services[i] {
					t.Errorf("services %v, want %v", m.Services, tc.services)
				}
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	k := readKeys(t, "keys.txt", "lab")
	other := readKeys(t, "other.txt", "other")
	good := readPacket(t, "access.spa")
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return b
	}
	random := make([]byte, 300)
	for i := range random {
		random[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(i*37+11)%64]
	}
	for _, tc := range []struct {
		name string
		data []byte
		keys []*Key
		want error
	}{
		{"wrong key", good, []*Key{other}, ErrBadHMAC},
		{"packet of another key", readPacket(t, "otherkey.spa"), []*Key{k}, ErrBadHMAC},
		{"flipped ciphertext", flip(50), []*Key{k}, ErrBadHMAC},
		{"flipped HMAC", flip(len(good) - 5), []*Key{k}, ErrBadHMAC},
		{"truncated", good[:len(good)-10], []*Key{k}, ErrBadHMAC},
		{"too short", good[:100], []*Key{k}, ErrTooShort},
		{"oversized", []byte(strings.Repeat(string(good), 8)), []*Key{k}, ErrTooLong},
		{"too long", []byte(strings.Repeat("A", 1501)), []*Key{k}, ErrTooLong},
		{"salted prefix", append([]byte(saltedPrefix), good...), []*Key{k}, ErrSaltPrefix},
		{"not base64", append(append([]byte(nil), good[:150]...), '!', '\n'), []*Key{k}, ErrNotBase64},
		{"random", random, []*Key{k}, ErrBadHMAC},
		{"no keys", good, nil, ErrBadHMAC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d Decoder
			if _, err := d.Verify(tc.data, tc.keys); !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// A packet whose HMAC key is right but whose cipher key is not: the HMAC
// passes, decryption must not.
func TestDecodeWrongCipherKey(t *testing.T) {
	k := readKeys(t, "keys.txt", "lab")
	var d Decoder
	if _, err := d.Verify(readPacket(t, "samehmac.spa"), []*Key{k}); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var m Message
	if err := d.Open(k, &m); err == nil {
		t.Errorf("Open decoded %+v with the wrong cipher key", m)
	}
}

// The packets the tests build decode like the ones fwknop wrote, and a
// message whose fields are wrong is refused after decryption.
func TestDecodeBuiltPackets(t *testing.T) {
	k := readKeys(t, "keys.txt", "lab")
	for _, tc := range []struct {
		name string
		msg  spatest.Message
		want error
	}{
		{"access", spatest.Message{User: "carol", Timestamp: fixtureTime, Access: "10.0.0.7,tcp/8443"}, nil},
		{"client timeout", spatest.Message{User: "carol", Timestamp: fixtureTime, Access: "10.0.0.7,udp/53", ClientTimeout: 9}, nil},
		{"no service", spatest.Message{User: "carol", Timestamp: fixtureTime, Access: "10.0.0.7"}, ErrMalformed},
		{"port 0", spatest.Message{User: "carol", Timestamp: fixtureTime, Access: "10.0.0.7,tcp/0"}, ErrMalformed},
		{"icmp", spatest.Message{User: "carol", Timestamp: fixtureTime, Access: "10.0.0.7,icmp/0"}, ErrMalformed},
		{"bad address", spatest.Message{User: "carol", Timestamp: fixtureTime, Access: "10.0.0.300,tcp/22"}, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d Decoder
			if _, err := d.Verify(spatest.Encode(tc.msg, k.Cipher, k.HMAC), []*Key{k}); err != nil {
				t.Fatal(err)
			}
			var m Message
			err := d.Open(k, &m)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
			if err == nil && (m.User != tc.msg.User || m.ClientTimeout != tc.msg.ClientTimeout || m.Timestamp != tc.msg.Timestamp) {
				t.Errorf("message %+v", m)
			}
		})
	}
}
