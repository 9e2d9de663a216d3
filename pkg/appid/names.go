package appid

// NameSet is a compiled list of DNS name patterns: exact names, and
// "*.suffix" for any name below suffix (not suffix itself). Names are
// compared case-insensitively, ignoring one trailing dot. Matching never
// allocates.
type NameSet struct {
	exact    map[string]struct{}
	suffixes []string // ".suffix", lower case
}

// NewNameSet compiles patterns (lower case, as pkg/config writes them).
func NewNameSet(patterns []string) *NameSet {
	s := &NameSet{exact: map[string]struct{}{}}
	for _, p := range patterns {
		if len(p) > 2 && p[0] == '*' && p[1] == '.' {
			s.suffixes = append(s.suffixes, p[1:])
		} else {
			s.exact[p] = struct{}{}
		}
	}
	return s
}

// maxName is the longest DNS name (253 characters without the final dot).
const maxName = 253

// Match reports whether name matches one of the patterns. A name longer
// than a DNS name can be, or with bytes no host name has, matches nothing.
func (s *NameSet) Match(name []byte) bool {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	if len(name) == 0 || len(name) > maxName {
		return false
	}
	var buf [maxName]byte
	lower := buf[:len(name)]
	prev := byte('.') // a name starts a label; an empty label matches nothing
	for i, c := range name {
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '.' && prev == '.':
			return false
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == ':', c == '[', c == ']':
		default:
			// A NUL or a space in a name is a trick to make two parsers
			// read two names: nothing matches it.
			return false
		}
		lower[i], prev = c, c
	}
	if _, ok := s.exact[string(lower)]; ok { // no allocation: map lookup by converted bytes
		return true
	}
	for _, suf := range s.suffixes {
		// The name must have at least one label before the suffix:
		// "*.example.com" does not match "example.com" nor ".example.com".
		if len(lower) > len(suf) && string(lower[len(lower)-len(suf):]) == suf {
			return true
		}
	}
	return false
}
