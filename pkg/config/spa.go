package config

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"time"
)

// SPA holds the [spa] table and every [[spa_key]]: single packet
// authorization as fwknop's clients speak it.
type SPA struct {
	// Port is the UDP port SPA packets are sent to on the gateway; 0
	// means DefaultSPAPort. Nothing listens on it: the packets are taken
	// from the queue.
	Port uint16
	// ReplayFile keeps the digests of the messages granted across
	// restarts; "" means DefaultSPAReplayFile.
	ReplayFile string
	Keys       []SPAKey
	Pos        Pos
}

// SPA defaults.
const (
	DefaultSPAPort       = 62201
	DefaultSPAReplayFile = "/var/lib/picoseg/spa-replay"
	DefaultSPAWindow     = 30 * time.Second
	// MaxSPAWindow bounds a rule's window: a grant is for opening a
	// connection, not for a session.
	MaxSPAWindow = time.Hour
	// spaCipherKeyLen, spaMinHMACKeyLen and spaMaxHMACKeyLen are
	// spa.CipherKeyLen and its HMAC bounds (config does not import spa).
	spaCipherKeyLen  = 32
	spaMinHMACKeyLen = 32
	spaMaxHMACKeyLen = 128
)

// SPAKey is one [[spa_key]]: a named pair of keys as `fwknop --key-gen`
// prints them, and who may use it.
type SPAKey struct {
	Name         string
	Cipher, HMAC []byte
	// File is the key file the keys were read from, "" when inline.
	File string
	// Users are the sources (from-style endpoints) whose SPA packets may
	// be authenticated with this key.
	Users []Endpoint
	Pos   Pos
}

// Auth is an allow rule's auth = "spa": the keys it accepts and how long
// a valid SPA packet opens it for.
type Auth struct {
	Keys   []string
	Window time.Duration
	Pos    Pos
}

func (b *builder) spaTable(t table) {
	t.checkKeys("port", "replay_file")
	b.cfg.SPA.Pos = t.Pos()
	if n, pos, ok := t.integer("port"); ok {
		if n < 1 || n > 65535 {
			t.errorf(pos, "port = %d: want 1 to 65535", n)
		} else {
			b.cfg.SPA.Port = uint16(n)
		}
	}
	if s, pos, ok := t.str("replay_file"); ok {
		if !strings.HasPrefix(s, "/") {
			t.errorf(pos, "replay_file %q: want an absolute path", s)
		} else {
			b.cfg.SPA.ReplayFile = s
		}
	}
}

// spaKey reads one [[spa_key]]. The keys are written inline (key_base64,
// hmac_key_base64) or read from key_file, the file `fwknop --key-gen -K`
// writes, which must be readable by its owner alone.
func (b *builder) spaKey(t table) {
	t.checkKeys("name", "key_base64", "hmac_key_base64", "key_file", "from")
	k := SPAKey{Pos: t.Pos()}
	k.Name, _ = t.nameOf("spa_key")
	t.required("from")
	from, ok := t.strings("from")
	t.nonEmpty("from", from, ok)
	for _, f := range from {
		e, err := parseEndpoint(f.s, true)
		if err != nil {
			t.errorf(f.pos, "%v", err)
			continue
		}
		e.Pos = f.pos
		k.Users = append(k.Users, e)
	}
	cipherB64, cpos, hasCipher := t.str("key_base64")
	hmacB64, hpos, hasHMAC := t.str("hmac_key_base64")
	file, fpos, hasFile := t.str("key_file")
	switch {
	case hasFile && (hasCipher || hasHMAC):
		t.errorf(fpos, "key_file and key_base64/hmac_key_base64 both given: use one")
	case hasFile:
		k.File = file
		var err error
		if cipherB64, hmacB64, err = readSPAKeyFile(file); err != nil {
			t.errorf(fpos, "key_file: %v", err)
			break
		}
		cpos, hpos, hasCipher, hasHMAC = fpos, fpos, true, true
	case !hasCipher || !hasHMAC:
		t.errorf(t.Pos(), "spa_key %q needs key_base64 and hmac_key_base64 (as `fwknop --key-gen` prints them), or key_file", k.Name)
	}
	if hasCipher && hasHMAC {
		k.Cipher = t.spaKeyBytes(cipherB64, cpos, "key_base64", spaCipherKeyLen, spaCipherKeyLen)
		k.HMAC = t.spaKeyBytes(hmacB64, hpos, "hmac_key_base64", spaMinHMACKeyLen, spaMaxHMACKeyLen)
	}
	b.cfg.SPA.Keys = append(b.cfg.SPA.Keys, k)
	b.src.spaKeyName = append(b.src.spaKeyName, t.Pos())
}

func (t table) spaKeyBytes(s string, pos Pos, what string, lo, hi int) []byte {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.errorf(pos, "%s is not base64: %v", what, err)
		return nil
	}
	if len(key) < lo || len(key) > hi {
		want := fmt.Sprintf("%d", lo)
		if lo != hi {
			want = fmt.Sprintf("%d to %d", lo, hi)
		}
		t.errorf(pos, "%s is %d bytes, want %s (as `fwknop --key-gen` prints it)", what, len(key), want)
		return nil
	}
	return key
}

// readSPAKeyFile reads KEY_BASE64 and HMAC_KEY_BASE64 from a key file. A
// file that others than its owner can read (or write) is refused: the
// keys are what opens the service.
func readSPAKeyFile(path string) (cipherB64, hmacB64 string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", "", err
	}
	if !fi.Mode().IsRegular() {
		return "", "", fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", "", fmt.Errorf("%s has mode %04o: readable or writable by others than its owner; chmod 600 it", path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			k, v, ok = strings.Cut(strings.TrimSpace(line), " ")
		}
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "KEY_BASE64":
			cipherB64 = strings.TrimSpace(v)
		case "HMAC_KEY_BASE64":
			hmacB64 = strings.TrimSpace(v)
		}
	}
	if cipherB64 == "" || hmacB64 == "" {
		return "", "", fmt.Errorf("%s holds no KEY_BASE64 and HMAC_KEY_BASE64 lines", path)
	}
	return cipherB64, hmacB64, nil
}

// auth reads an allow rule's auth, spa_keys and spa_window.
func (t table) auth() *Auth {
	s, pos, ok := t.str("auth")
	if !ok {
		for _, k := range []string{"spa_keys", "spa_window"} {
			if t.has(k) {
				t.errorf(t.keyPos(k), `%s without auth = "spa"`, k)
			}
		}
		return nil
	}
	if s != "spa" {
		t.errorf(pos, `auth = %q: want "spa"`, s)
		return nil
	}
	a := &Auth{Window: DefaultSPAWindow, Pos: pos}
	keys, ok := t.strings("spa_keys")
	if !ok {
		t.errorf(pos, `auth = "spa" needs spa_keys: the [[spa_key]] names it accepts`)
	}
	t.nonEmpty("spa_keys", keys, ok)
	for _, k := range keys {
		a.Keys = append(a.Keys, k.s)
	}
	if w, wpos, ok := t.str("spa_window"); ok {
		d, err := parseDuration(w)
		switch {
		case err != nil:
			t.errorf(wpos, "%v", err)
		case d < time.Second || d > MaxSPAWindow:
			t.errorf(wpos, "spa_window %v: want 1s to %v", d, MaxSPAWindow)
		default:
			a.Window = d
		}
	}
	return a
}

// checkSPA resolves what the SPA settings name: each key's users, and each
// rule's keys. A rule with auth that cannot be reached by any port is
// pointless, but not wrong.
func (b *builder) checkSPA(zones, groups, devices map[string]int) {
	keys := b.unique("spa_key", names(b.cfg.SPA.Keys, func(k SPAKey) string { return k.Name }), b.src.spaKeyName)
	for _, k := range b.cfg.SPA.Keys {
		for _, u := range k.Users {
			b.resolve(u, zones, groups, devices)
		}
	}
	for _, a := range b.cfg.Allows {
		if a.Auth == nil {
			continue
		}
		for _, k := range a.Auth.Keys {
			if _, ok := keys[k]; !ok {
				b.diag.errorf(a.Auth.Pos, "allow rule %q: unknown spa_key %q", a.Name, k)
			}
		}
	}
}
