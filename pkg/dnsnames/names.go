package dnsnames

import "hash/maphash"

// MaxParents is how many parent domains of a name are kept: the shortest
// ones (the top-level domain first). A "*.SUFFIX" pattern may have at most
// this many labels in SUFFIX.
const MaxParents = 6

// seed keys the hashes. It is made once per process and never changes:
// the table and the policies compiled in the process hash alike.
var seed = maphash.MakeSeed()

// Hash is the keyed hash of a name in lower case, without the final dot.
func Hash(name []byte) uint64 { return maphash.Bytes(seed, name) }

// HashString is Hash of a string.
func HashString(name string) uint64 { return maphash.String(seed, name) }

// Name is what the table keeps of a name: its hash and the hashes of its
// parent domains, so that "dns:NAME" matches Full and "dns:*.SUFFIX"
// matches one of Parents (a strict parent: "*.example.com" is not
// "example.com" itself).
type Name struct {
	Full    uint64
	Parents [MaxParents]uint64
	N       uint8 // Parents in use
}

// MakeName hashes name (lower case, dotted, no final dot) and its parents.
func MakeName(name []byte) Name {
	n := Name{Full: Hash(name)}
	// Walk the dots from the right: "a.b.example.com" gives "com",
	// "example.com", "b.example.com".
	end := len(name)
	for i := end - 1; i > 0 && n.N < MaxParents; i-- {
		if name[i] == '.' {
			n.Parents[n.N] = Hash(name[i+1:])
			n.N++
		}
	}
	return n
}
