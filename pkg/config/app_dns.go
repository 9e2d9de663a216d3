package config

import (
	"math"
	"strings"
)

// DNSRule is [allow.dns]: what a device's DNS queries under the rule may
// look like.
type DNSRule struct {
	// Names are the query names allowed: exact, or "*.suffix". Empty: any.
	Names []string
	// MaxName bounds a query name's length in characters (0: no bound).
	MaxName int
	// MaxEntropy bounds the Shannon entropy of a name's characters, dots
	// left out, in bits per character (0: no bound).
	MaxEntropy float64
	// Rate bounds one device's queries under the rule (zero: no bound).
	Rate Rate
	Pos  Pos
}

// DNS rule bounds. A name has at most 253 characters; entropy over 256
// byte values is at most 8 bits per character.
const (
	maxDNSName    = 253
	maxDNSEntropy = 8.0
)

func decodeDNSRule(t table, r *AppRule) {
	t.checkKeys("names", "max_name", "max_entropy", "rate")
	dr := &DNSRule{Pos: t.Pos()}
	if t.has("names") {
		dr.Names = t.nameList("names")
	}
	if n, pos, ok := t.integer("max_name"); ok {
		if n < 1 || n > maxDNSName {
			t.errorf(pos, "max_name = %d: want 1 to %d characters", n, maxDNSName)
		} else {
			dr.MaxName = int(n)
		}
	}
	if t.has("max_entropy") {
		switch v := t.value("max_entropy").(type) {
		case float64:
			dr.MaxEntropy = v
		case int64:
			dr.MaxEntropy = float64(v)
		default:
			t.wrongType("max_entropy", "number", t.field("max_entropy"))
		}
		if e := dr.MaxEntropy; math.IsNaN(e) || e <= 0 || e > maxDNSEntropy {
			t.errorf(t.valuePos("max_entropy"), "max_entropy = %v: want more than 0 and at most %v bits per character", e, maxDNSEntropy)
			dr.MaxEntropy = 0
		}
	}
	if s, pos, ok := t.str("rate"); ok {
		// "20/min" reads like the other rates' "20/m".
		rt, err := parseRate(strings.Replace(s, "/min", "/m", 1))
		if err != nil {
			t.errorf(pos, "%v", err)
		} else {
			dr.Rate = rt
		}
	}
	r.DNS = dr
}
