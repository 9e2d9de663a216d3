package mud

import (
	"fmt"
	"io"
	"strings"
)

// Form is the shape a MUD file was written in.
type Form uint8

const (
	// FormRFC is RFC 8520: access lists under ietf-access-control-list:acls.
	FormRFC Form = iota
	// FormMUDgee is what MUDgee writes: the RFC's lists under
	// ietf-access-control-list:access-lists.
	FormMUDgee
	// FormDraft is the older drafts': ietf-mud:meta-data, acl-name,
	// access-list-entries, rule-name, permit.
	FormDraft
)

var formNames = [...]string{"RFC 8520", "MUDgee (ietf-access-control-list:access-lists)", "draft (ietf-mud:meta-data, acl-name)"}

// String names the form.
func (f Form) String() string { return formNames[f] }

// Direction is which way an access list's packets go, seen from the device.
type Direction uint8

const (
	// FromDevice is the device's from-device-policy: packets it sends.
	FromDevice Direction = iota
	// ToDevice is its to-device-policy: packets it receives.
	ToDevice
)

// String returns "from-device" or "to-device", as MUD writes them.
func (d Direction) String() string {
	if d == ToDevice {
		return "to-device"
	}
	return "from-device"
}

// File is a MUD file read: what it says about the device, and its two
// policies in the order the file lists them.
type File struct {
	Form Form
	// URL is the file's mud-url; SystemInfo, Manufacturer and Model are
	// systeminfo, mfg-name and model-name. Any may be "".
	URL, SystemInfo, Manufacturer, Model string
	// Policies holds the access lists of each direction
	// (Policies[FromDevice], Policies[ToDevice]).
	Policies [2][]*ACL
	// Unused names the access lists the file defines but neither policy
	// uses.
	Unused []string
}

// ACL is one access list.
type ACL struct {
	Name string
	Path string
	ACEs []ACE

	direction string // packet-direction, in the earliest drafts
}

// Read reads a MUD file from r, refusing one over MaxFileSize.
func Read(r io.Reader) (*File, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge()
	}
	return Parse(data)
}

func tooLarge() error {
	return &Error{Msg: fmt.Sprintf("%v (%d bytes)", ErrTooLarge, MaxFileSize), Err: ErrTooLarge}
}

// The names each form gives the same things.
var (
	mudKeys   = []string{"ietf-mud:mud", "ietf-mud:meta-data"}
	aclsKeys  = []string{"ietf-access-control-list:acls", "ietf-access-control-list:access-lists", "ietf-acl:access-lists"}
	aclKeys   = []string{"acl", "ietf-acl:access-list", "access-list"}
	nameKeys  = []string{"name", "acl-name"}
	acesKeys  = []string{"aces", "access-list-entries"}
	aceKeys   = []string{"ace"}
	ruleKeys  = []string{"name", "rule-name"}
	policyKey = [2]string{"from-device-policy", "to-device-policy"}
)

// Parse reads a MUD file held in data.
func Parse(data []byte) (*File, error) {
	if len(data) > MaxFileSize {
		return nil, tooLarge()
	}
	root, err := decodeTree(data)
	if err != nil {
		return nil, err
	}
	top, err := root.object()
	if err != nil {
		return nil, err
	}
	meta, metaKey := firstField(top, mudKeys...)
	if meta == nil {
		return nil, errorf("", "no %q object: not a MUD file", mudKeys[0])
	}
	metaObj, err := meta.object()
	if err != nil {
		return nil, err
	}
	f := &File{Form: FormRFC}
	if metaKey == "ietf-mud:meta-data" {
		f.Form = FormDraft
	}
	if err := f.readMeta(metaObj); err != nil {
		return nil, err
	}
	aclsNode, aclsKey := firstField(top, aclsKeys...)
	if aclsNode == nil {
		return nil, errorf("", "no access lists (%s)", strings.Join(aclsKeys, " or "))
	}
	if aclsKey != aclsKeys[0] && f.Form == FormRFC {
		f.Form = FormMUDgee
	}
	acls, order, err := f.readACLs(aclsNode)
	if err != nil {
		return nil, err
	}
	if err := f.bindPolicies(metaObj, meta.path, acls, order); err != nil {
		return nil, err
	}
	return f, nil
}

// readMeta reads the description strings; they only ever reach comments.
func (f *File) readMeta(m map[string]*node) error {
	for key, dst := range map[string]*string{"mud-url": &f.URL, "systeminfo": &f.SystemInfo,
		"mfg-name": &f.Manufacturer, "model-name": &f.Model} {
		if n := m[key]; n != nil {
			s, err := n.str()
			if err != nil {
				return err
			}
			*dst = s
		}
	}
	return nil
}

// readACLs reads every access list, keyed by name, and their order.
func (f *File) readACLs(n *node) (map[string]*ACL, []string, error) {
	obj, err := n.object()
	if err != nil {
		return nil, nil, err
	}
	listNode, _ := firstField(obj, aclKeys...)
	if listNode == nil {
		return nil, nil, errorf(n.path, "no %q list", "acl")
	}
	list, err := listNode.list()
	if err != nil {
		return nil, nil, err
	}
	acls := map[string]*ACL{}
	var order []string
	for _, an := range list {
		acl, err := f.readACL(an)
		if err != nil {
			return nil, nil, err
		}
		if acls[acl.Name] != nil {
			return nil, nil, errorf(an.path, "access list %q defined twice", acl.Name)
		}
		acls[acl.Name] = acl
		order = append(order, acl.Name)
	}
	return acls, order, nil
}

func (f *File) readACL(n *node) (*ACL, error) {
	obj, err := n.object()
	if err != nil {
		return nil, err
	}
	nameNode, nameKey := firstField(obj, nameKeys...)
	if nameNode == nil {
		return nil, errorf(n.path, "access list without a name")
	}
	if nameKey == "acl-name" {
		f.Form = FormDraft
	}
	acl := &ACL{Path: n.path}
	if acl.Name, err = nameNode.str(); err != nil {
		return nil, err
	}
	if dn, _ := firstField(obj, packetDirectionKeys...); dn != nil {
		if acl.direction, err = dn.str(); err != nil {
			return nil, err
		}
	}
	acesNode, _ := firstField(obj, acesKeys...)
	if acesNode == nil {
		return acl, nil // an empty list allows nothing
	}
	acesObj, err := acesNode.object()
	if err != nil {
		return nil, err
	}
	aceList, _ := firstField(acesObj, aceKeys...)
	if aceList == nil {
		return acl, nil
	}
	entries, err := aceList.list()
	if err != nil {
		return nil, err
	}
	for _, en := range entries {
		ace, err := readACE(en)
		if err != nil {
			return nil, err
		}
		acl.ACEs = append(acl.ACEs, ace)
	}
	return acl, nil
}

// bindPolicies files each access list under the direction that uses it:
// from-device-policy and to-device-policy name them (RFC, MUDgee, later
// drafts); the earliest drafts mark each list with packet-direction.
func (f *File) bindPolicies(meta map[string]*node, metaPath string, acls map[string]*ACL, order []string) error {
	used := map[string]bool{}
	named := false
	for dir, key := range policyKey {
		pn := meta[key]
		if pn == nil {
			continue
		}
		named = true
		names, err := policyNames(pn)
		if err != nil {
			return err
		}
		for _, ref := range names {
			acl := acls[ref.name]
			if acl == nil {
				return errorf(ref.path, "%s names access list %q, which the file does not define", key, ref.name)
			}
			if used[ref.name] {
				return errorf(ref.path, "access list %q is used twice", ref.name)
			}
			used[ref.name] = true
			f.Policies[dir] = append(f.Policies[dir], acl)
		}
	}
	if !named {
		return f.bindByPacketDirection(acls, order, metaPath)
	}
	for _, name := range order {
		if !used[name] {
			f.Unused = append(f.Unused, name)
		}
	}
	return nil
}

type aclRef struct{ name, path string }

// policyNames reads {"access-lists": {"access-list": [{"name": ...}]}}.
func policyNames(pn *node) ([]aclRef, error) {
	obj, err := pn.object()
	if err != nil {
		return nil, err
	}
	al := obj["access-lists"]
	if al == nil {
		return nil, errorf(pn.path, "no %q", "access-lists")
	}
	alObj, err := al.object()
	if err != nil {
		return nil, err
	}
	ln := alObj["access-list"]
	if ln == nil {
		return nil, errorf(al.path, "no %q list", "access-list")
	}
	list, err := ln.list()
	if err != nil {
		return nil, err
	}
	var out []aclRef
	for _, e := range list {
		eo, err := e.object()
		if err != nil {
			return nil, err
		}
		nn, _ := firstField(eo, nameKeys...)
		if nn == nil {
			return nil, errorf(e.path, "access list reference without a name")
		}
		name, err := nn.str()
		if err != nil {
			return nil, err
		}
		out = append(out, aclRef{name, nn.path})
	}
	return out, nil
}

// packetDirectionKeys mark a list's direction in the earliest drafts.
var packetDirectionKeys = []string{"ietf-mud:packet-direction", "packet-direction"}

func (f *File) bindByPacketDirection(acls map[string]*ACL, order []string, metaPath string) error {
	if len(order) == 0 {
		return errorf(metaPath, "no %s or %s", policyKey[0], policyKey[1])
	}
	for _, name := range order {
		acl := acls[name]
		dir, err := acl.packetDirection()
		if err != nil {
			return err
		}
		f.Policies[dir] = append(f.Policies[dir], acl)
	}
	return nil
}

// packetDirection is the list's packet-direction, for files whose
// policies do not name their lists.
func (a *ACL) packetDirection() (Direction, error) {
	if a.direction == "" {
		return 0, errorf(a.Path, "access list %q is in neither policy (no from-device-policy, to-device-policy or packet-direction)", a.Name)
	}
	return parseDirection(a.direction, a.Path)
}

func parseDirection(s, path string) (Direction, error) {
	switch s {
	case "from-device":
		return FromDevice, nil
	case "to-device":
		return ToDevice, nil
	}
	return 0, errorf(path, "want \"from-device\" or \"to-device\", got %q", s)
}
