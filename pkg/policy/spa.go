package policy

import (
	"fmt"
	"time"

	"github.com/picoseg/picoseg/pkg/config"
	"github.com/picoseg/picoseg/pkg/spa"
)

// SPA is the compiled single packet authorization: the port knocks are
// sent to, the keys and who may use each, and the rules that require a
// knock.
type SPA struct {
	// Port is the UDP port on the gateway SPA packets are taken from.
	Port uint16
	// ReplayFile is where the replay cache is kept.
	ReplayFile string
	// Keys are the [[spa_key]] keys, by index.
	Keys []SPAKey

	keyID map[string]int32
	rules []spaRule
}

// SPAKey is one compiled [[spa_key]].
type SPAKey struct {
	Key   *spa.Key
	users []selector
}

// Auth is a rule's SPA requirement: the keys whose knocks open it, and for
// how long.
type Auth struct {
	Keys   []int32
	Window time.Duration
}

// spaRule is a rule with auth, as knocks are matched against it.
type spaRule struct {
	rule     int32
	from     selector
	keys     []int32
	services []config.Service
}

// Enabled reports whether the policy has SPA keys, so that packets to the
// SPA port are knocks.
func (s *SPA) Enabled() bool { return len(s.Keys) > 0 }

// compileSPAKeys compiles the keys; it runs before the rules, which name
// them.
func (p *Policy) compileSPAKeys(c *config.SPA, names resolver) error {
	p.SPA = SPA{Port: c.Port, ReplayFile: c.ReplayFile, keyID: map[string]int32{}}
	if p.SPA.Port == 0 {
		p.SPA.Port = config.DefaultSPAPort
	}
	if p.SPA.ReplayFile == "" {
		p.SPA.ReplayFile = config.DefaultSPAReplayFile
	}
	for i, k := range c.Keys {
		ck := SPAKey{Key: &spa.Key{Name: k.Name, Cipher: k.Cipher, HMAC: k.HMAC}}
		for _, u := range k.Users {
			s, err := p.selectorOf(u, names, p.netIDs)
			if err != nil {
				return err
			}
			ck.users = append(ck.users, s)
		}
		p.SPA.keyID[k.Name] = int32(i)
		p.SPA.Keys = append(p.SPA.Keys, ck)
	}
	return nil
}

// compileAuth compiles rule ri's auth, whose source selector is from.
func (p *Policy) compileAuth(a *config.Allow, ri int32, from selector) (*Auth, error) {
	if a.Auth == nil {
		return nil, nil
	}
	auth := &Auth{Window: a.Auth.Window}
	for _, name := range a.Auth.Keys {
		id, ok := p.SPA.keyID[name]
		if !ok {
			return nil, fmt.Errorf("%s: unknown spa_key %q", a.Auth.Pos, name)
		}
		auth.Keys = append(auth.Keys, id)
	}
	p.SPA.rules = append(p.SPA.rules, spaRule{rule: ri, from: from, keys: auth.Keys, services: a.Services})
	return auth, nil
}

// SPAKeysFor appends to out the indexes of the keys src may knock with.
func (p *Policy) SPAKeysFor(src *Side, s *Scratch, out []int32) []int32 {
	sels := p.selectors(src, s.src[:0], s.nets[:0], false)
	for i := range p.SPA.Keys {
		if anyIn(p.SPA.Keys[i].users, sels) {
			out = append(out, int32(i))
		}
	}
	return out
}

// SPARules appends to out the rules with auth that a knock from src with
// key opens for proto and port: rules that accept the key, whose source
// covers src, and whose services include the port. A knock asks for a
// service; it opens only what a rule with that key allows.
func (p *Policy) SPARules(src *Side, key int32, proto uint8, port uint16, s *Scratch, out []int32) []int32 {
	sels := p.selectors(src, s.src[:0], s.nets[:0], false)
	for _, r := range p.SPA.rules {
		if !contains(r.keys, key) || !anyIn([]selector{r.from}, sels) || !servicesAllow(r.services, proto, port) {
			continue
		}
		out = append(out, r.rule)
	}
	return out
}

func anyIn(want, have []selector) bool {
	for _, w := range want {
		for _, h := range have {
			if w == h {
				return true
			}
		}
	}
	return false
}

func contains(list []int32, v int32) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// servicesAllow reports whether a rule's services (none: every service)
// include proto and port.
func servicesAllow(services []config.Service, proto uint8, port uint16) bool {
	if len(services) == 0 {
		return true
	}
	for _, s := range services {
		if s.Proto == 0 || s.Proto == proto && port >= s.PortLo && port <= s.PortHi {
			return true
		}
	}
	return false
}
