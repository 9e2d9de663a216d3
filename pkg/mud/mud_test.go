package mud

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoseg/picoseg/pkg/config"
)

// entry is one access-control entry of a generated MUD file.
type entry struct {
	dir     Direction
	matches string // the JSON "matches" object
	action  string // "" is accept
}

// mudJSON writes an RFC 8520 MUD file with one access list per direction.
func mudJSON(entries ...entry) string {
	var lists [2][]string
	for i, e := range entries {
		action := e.action
		if action == "" {
			action = "accept"
		}
		lists[e.dir] = append(lists[e.dir], fmt.Sprintf(`{"name": "e%d", "matches": %s, "actions": {"forwarding": %q}}`, i, e.matches, action))
	}
	return fmt.Sprintf(`{
  "ietf-mud:mud": {"mud-version": 1, "mud-url": "https://mud.example.com/acme/dev.json", "model-name": "dev",
    "from-device-policy": {"access-lists": {"access-list": [{"name": "from"}]}},
    "to-device-policy": {"access-lists": {"access-list": [{"name": "to"}]}}},
  "ietf-access-control-list:acls": {"acl": [
    {"name": "from", "aces": {"ace": [%s]}},
    {"name": "to", "aces": {"ace": [%s]}}]}}`, strings.Join(lists[FromDevice], ","), strings.Join(lists[ToDevice], ","))
}

// importText imports a MUD file held in text into testdata/base.toml and
// checks that the result loads.
func importText(t *testing.T, text string, m Mapping) (*Proposal, string) {
	t.Helper()
	f, err := Parse([]byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	cfg, _, err := config.Load(basePath)
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(basePath)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Import(f, Options{Map: m, Base: NamesOf(cfg), MAC: "02:00:00:00:00:31"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := p.WriteTOML(&out, base); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Verify(basePath, out.Bytes()); err != nil {
		t.Fatalf("the proposal does not load: %v\n%s", err, out.String())
	}
	return p, out.String()
}

func ruleLines(p *Proposal) []string {
	var out []string
	for _, r := range p.Rules {
		s := r.From + " -> " + r.To + " " + strings.Join(r.Services, ",")
		if r.Disabled != "" {
			s = "# " + s
		}
		out = append(out, s)
	}
	return out
}

// TestImportAbstractions maps each MUD abstraction, and leaves each
// unmapped.
func TestImportAbstractions(t *testing.T) {
	const udp = `"ipv4": {"protocol": 17}, "udp": {"destination-port": {"operator": "eq", "port": 5000}}`
	for _, tc := range []struct {
		name      string
		mud       string // the ietf-mud:mud match
		mapping   string // KEY=ENDPOINT or ""
		want      string
		wantGroup string // a new group the proposal must add
		problem   string
	}{
		{"local-networks mapped", `"local-networks": [null]`, "local-networks=zone:lan", "group:dev -> zone:lan udp/5000", "", ""},
		{"local-networks unmapped", `"local-networks": [null]`, "", "# group:dev -> zone:local udp/5000", "", "--local-zone"},
		{"same-manufacturer mapped", `"same-manufacturer": [null]`, "same-manufacturer=group:acme-admins", "group:dev -> group:acme-admins udp/5000", "", ""},
		{"same-manufacturer unmapped", `"same-manufacturer": [null]`, "", "group:dev -> group:mfr-mud-example-com udp/5000", "mfr-mud-example-com", ""},
		{"manufacturer mapped", `"manufacturer": "vendor.example"`, "manufacturer:vendor.example=net:192.0.2.0/24", "group:dev -> net:192.0.2.0/24 udp/5000", "", ""},
		{"manufacturer unmapped", `"manufacturer": "vendor.example"`, "", "group:dev -> group:mfr-vendor-example udp/5000", "mfr-vendor-example", ""},
		{"my-controller mapped", `"my-controller": [null]`, "my-controller=device:hub", "group:dev -> device:hub udp/5000", "", ""},
		{"my-controller mapped to a new group", `"my-controller": [null]`, "my-controller=group:hubs", "group:dev -> group:hubs udp/5000", "hubs", ""},
		{"my-controller unmapped", `"my-controller": [null]`, "", "group:dev -> group:dev-controller udp/5000", "dev-controller", ""},
		{"controller mapped", `"controller": "urn:ietf:params:mud:ntp"`, "controller:urn:ietf:params:mud:ntp=gateway", "group:dev -> gateway udp/5000", "", ""},
		{"controller unmapped", `"controller": "urn:ietf:params:mud:ntp"`, "", "group:dev -> group:controller-mud-ntp udp/5000", "controller-mud-ntp", ""},
		{"model mapped", `"model": "https://v.example/m1"`, "model:https://v.example/m1=group:acme-admins", "group:dev -> group:acme-admins udp/5000", "", ""},
		{"model unmapped", `"model": "https://v.example/m1"`, "", "group:dev -> group:model-v-example-m1 udp/5000", "model-v-example-m1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := Mapping{}
			if tc.mapping != "" {
				if err := m.Set(tc.mapping); err != nil {
					t.Fatal(err)
				}
			}
			p, out := importText(t, mudJSON(entry{FromDevice, `{"ietf-mud:mud": {` + tc.mud + `}, ` + udp + `}`, ""}), m)
			if got := strings.Join(ruleLines(p), "\n"); got != tc.want {
				t.Errorf("rules (-want +got):\n-%s\n+%s\n%s", tc.want, got, out)
			}
			var groups []string
			for _, g := range p.Groups {
				groups = append(groups, g.Name)
			}
			if got := strings.Join(groups, ","); got != tc.wantGroup {
				t.Errorf("new groups %q, want %q", got, tc.wantGroup)
			}
			gotProblems := fmt.Sprint(p.Problems)
			if (tc.problem == "") != (len(p.Problems) == 0) || !strings.Contains(gotProblems, tc.problem) {
				t.Errorf("problems %s, want one saying %q", gotProblems, tc.problem)
			}
		})
	}
}

// TestImportNotRepresentable feeds entries picoseg cannot express: each
// is a problem, and its rule is written commented out (or not at all,
// for a deny), never active with a match left out.
func TestImportNotRepresentable(t *testing.T) {
	const net = `"destination-ipv4-network": "203.0.113.0/24"`
	for _, tc := range []struct {
		name    string
		e       entry
		want    string // the rule, "" for none
		problem string
	}{
		{"icmp type", entry{FromDevice, `{"ipv4": {"protocol": 1, ` + net + `}, "icmp": {"type": 8}}`, ""},
			"# group:dev -> net:203.0.113.0/24 icmp", "icmp/type"},
		{"direction-initiated on udp", entry{FromDevice, `{"ipv4": {"protocol": 17, ` + net + `}, "udp": {"ietf-mud:direction-initiated": "from-device", "destination-port": {"port": 53}}}`, ""},
			"# group:dev -> net:203.0.113.0/24 udp/53", "direction-initiated on udp"},
		{"drop action", entry{FromDevice, `{"ipv4": {"protocol": 6, ` + net + `}}`, "drop"}, "", `action "drop"`},
		{"reject action", entry{FromDevice, `{"ipv4": {"protocol": 6, ` + net + `}}`, "ietf-access-control-list:reject"}, "", `action "reject"`},
		{"ttl match", entry{FromDevice, `{"ipv4": {"protocol": 6, "ttl": 1, ` + net + `}}`, ""}, "# group:dev -> net:203.0.113.0/24 tcp", "ipv4/ttl"},
		{"ethernet match", entry{FromDevice, `{"eth": {"ethertype": 2054}}`, ""}, "# group:dev -> any any", "matches/eth"},
		{"neq port", entry{FromDevice, `{"ipv4": {"protocol": 6, ` + net + `}, "tcp": {"destination-port": {"operator": "neq", "port": 23}}}`, ""},
			"# group:dev -> net:203.0.113.0/24 tcp", "destination-port"},
		{"tcp flags", entry{FromDevice, `{"ipv4": {"protocol": 6, ` + net + `}, "tcp": {"flags": "syn", "destination-port": {"port": 443}}}`, ""},
			"# group:dev -> net:203.0.113.0/24 tcp/443", "tcp/flags"},
		{"source and destination port", entry{FromDevice, `{"ipv4": {"protocol": 17, ` + net + `}, "udp": {"source-port": {"port": 123}, "destination-port": {"port": 123}}}`, ""},
			"# group:dev -> net:203.0.113.0/24 udp/123", "opening side's port 123"},
		{"two peers", entry{FromDevice, `{"ipv4": {"protocol": 6, "ietf-acldns:dst-dnsname": "a.example", ` + net + `}}`, ""},
			"# group:dev -> dns:a.example tcp", "several peers"},
		{"the device's own network", entry{FromDevice, `{"ipv4": {"protocol": 6, "source-ipv4-network": "10.77.0.0/24", ` + net + `}}`, ""},
			"# group:dev -> net:203.0.113.0/24 tcp", "device's own"},
		{"a DNS name opening to the device", entry{ToDevice, `{"ipv4": {"protocol": 6, "ietf-acldns:src-dnsname": "a.example"}, "tcp": {"destination-port": {"port": 80}}}`, ""},
			"# dns:a.example -> group:dev tcp/80", "never a source"},
		{"protocol 0", entry{FromDevice, `{"ipv4": {"protocol": 0, ` + net + `}}`, ""}, "# group:dev -> net:203.0.113.0/24 proto/0", "protocol 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, out := importText(t, mudJSON(tc.e), nil)
			if got := strings.Join(ruleLines(p), "\n"); got != tc.want {
				t.Errorf("rules (-want +got):\n-%s\n+%s\n%s", tc.want, got, out)
			}
			if !strings.Contains(fmt.Sprint(p.Problems), tc.problem) {
				t.Errorf("problems %v, want one saying %q", p.Problems, tc.problem)
			}
			if !strings.Contains(out, "NOT REPRESENTED") {
				t.Errorf("the output does not list the problem:\n%s", out)
			}
		})
	}
}

// TestImportReplies checks how reply halves are read: they join the rule
// of the flow they answer, and alone they allow nothing.
func TestImportReplies(t *testing.T) {
	const open = `{"ipv4": {"protocol": 6, "destination-ipv4-network": "203.0.113.0/24"}, "tcp": {"destination-port": {"port": 443}}}`
	const reply = `{"ipv4": {"protocol": 6, "source-ipv4-network": "203.0.113.0/24"}, "tcp": {"source-port": {"port": 443}}}`
	p, _ := importText(t, mudJSON(entry{FromDevice, open, ""}, entry{ToDevice, reply, ""}), nil)
	if got := strings.Join(ruleLines(p), "\n"); got != "group:dev -> net:203.0.113.0/24 tcp/443" || len(p.Rules[0].Evidence) != 2 {
		t.Errorf("request and reply: %q, evidence %q", got, p.Rules[0].Evidence)
	}
	// A reply alone: MUD lets no request out, so there is no flow to allow.
	p, _ = importText(t, mudJSON(entry{ToDevice, reply, ""}), nil)
	if len(p.Rules) != 0 || !strings.Contains(fmt.Sprint(p.Notes), "nothing imported") {
		t.Errorf("a reply alone: rules %q, notes %q", ruleLines(p), p.Notes)
	}
	// A reply with a match picoseg cannot express joins its request:
	// the request's rule lets its packets through anyway.
	const oddReply = `{"ipv4": {"protocol": 6, "ttl": 64, "source-ipv4-network": "203.0.113.0/24"}, "tcp": {"source-port": {"port": 443}}}`
	p, _ = importText(t, mudJSON(entry{FromDevice, open, ""}, entry{ToDevice, oddReply, ""}), nil)
	if len(p.Problems) != 0 || len(p.Rules) != 1 || p.Rules[0].Disabled != "" {
		t.Errorf("a reply with a ttl match: rules %q, problems %v", ruleLines(p), p.Problems)
	}
}

// TestImportIPv6 reads IPv6 entries: networks, ICMPv6 by its container.
func TestImportIPv6(t *testing.T) {
	p, _ := importText(t, mudJSON(
		entry{FromDevice, `{"ipv6": {"protocol": 6, "destination-ipv6-network": "2001:db8::1/64"}, "tcp": {"destination-port": {"operator": "gte", "port": 8000}}}`, ""},
		entry{FromDevice, `{"ipv6": {}, "icmp": {}}`, ""}), nil)
	want := "group:dev -> net:2001:db8::/64 tcp/8000-65535\ngroup:dev -> any icmpv6"
	if got := strings.Join(ruleLines(p), "\n"); got != want || len(p.Problems) != 0 || len(p.Notes) != 0 {
		t.Errorf("rules (-want +got):\n-%s\n+%s\nproblems %v notes %v", want, got, p.Problems, p.Notes)
	}
}

// TestParseErrors feeds broken MUD files: each is refused with an error
// that says where and what.
func TestParseErrors(t *testing.T) {
	ok := mudJSON(entry{FromDevice, `{"ipv4": {"protocol": 6}}`, ""})
	for _, tc := range []struct {
		name, text, want string
	}{
		{"empty", ``, "not valid JSON"},
		{"truncated", ok[:len(ok)/2], "not valid JSON"},
		{"trailing data", ok + ` {}`, "data after the top-level value"},
		{"not an object", `[1, 2]`, "want an object, got a list"},
		{"no mud", `{"ietf-access-control-list:acls": {"acl": []}}`, "not a MUD file"},
		{"no access lists", `{"ietf-mud:mud": {}}`, "no access lists"},
		{"protocol as a string", strings.Replace(ok, `"protocol": 6`, `"protocol": "6"`, 1), `ipv4/protocol: want a number, got a string`},
		{"protocol too big", strings.Replace(ok, `"protocol": 6`, `"protocol": 300`, 1), "from 0 to 255"},
		{"protocol not whole", strings.Replace(ok, `"protocol": 6`, `"protocol": 6.5`, 1), "from 0 to 255"},
		{"port too big", mudJSON(entry{FromDevice, `{"tcp": {"destination-port": {"port": 70000}}}`, ""}), "from 0 to 65535"},
		{"range upside down", mudJSON(entry{FromDevice, `{"tcp": {"destination-port": {"lower-port": 90, "upper-port": 80}}}`, ""}), "above upper-port"},
		{"unknown operator", mudJSON(entry{FromDevice, `{"tcp": {"destination-port": {"operator": "lt", "port": 80}}}`, ""}), "unknown port operator"},
		{"unknown ACL", strings.Replace(ok, `[{"name": "to"}]`, `[{"name": "nope"}]`, 1), `to-device-policy names access list "nope", which the file does not define`},
		{"ACL used twice", strings.Replace(ok, `[{"name": "to"}]`, `[{"name": "from"}]`, 1), `access list "from" is used twice`},
		{"ACL defined twice", strings.Replace(ok, `{"name": "to", "aces"`, `{"name": "from", "aces"`, 1), "defined twice"},
		{"key twice", strings.Replace(ok, `"protocol": 6`, `"protocol": 6, "protocol": 17`, 1), "ipv4/protocol: key written twice"},
		{"tcp and udp", mudJSON(entry{FromDevice, `{"tcp": {}, "udp": {}}`, ""}), "a tcp match and a udp match"},
		{"protocol against tcp", mudJSON(entry{FromDevice, `{"ipv4": {"protocol": 17}, "tcp": {}}`, ""}), "a tcp match on protocol 17"},
		{"ipv4 and ipv6", mudJSON(entry{FromDevice, `{"ipv4": {}, "ipv6": {}}`, ""}), "an IPv4 and an IPv6 match"},
		{"IPv6 network as IPv4", mudJSON(entry{FromDevice, `{"ipv4": {"destination-ipv4-network": "2001:db8::/32"}}`, ""}), "is not an IPv4 network"},
		{"bad network", mudJSON(entry{FromDevice, `{"ipv4": {"destination-ipv4-network": "10.0.0.0/33"}}`, ""}), "not a network"},
		{"bad DNS name", mudJSON(entry{FromDevice, `{"ipv4": {"ietf-acldns:dst-dnsname": "a b"}}`, ""}), "not a DNS name"},
		{"empty leaf as true", mudJSON(entry{FromDevice, `{"ietf-mud:mud": {"my-controller": true}}`, ""}), "want [null]"},
		{"controller with a newline", mudJSON(entry{FromDevice, `{"ietf-mud:mud": {"controller": "a\nb"}}`, ""}), "printable"},
		{"direction misspelt", mudJSON(entry{FromDevice, `{"tcp": {"ietf-mud:direction-initiated": "from-cloud"}}`, ""}), `got "from-cloud"`},
		{"ports without tcp or udp", `{"ietf-mud:meta-data": {}, "ietf-access-control-list:access-lists": {"acl": [{"acl-name": "a", "ietf-mud:packet-direction": "from-device", "access-list-entries": {"ace": [{"rule-name": "r", "matches": {"destination-port-range": {"lower-port": 1, "upper-port": 2}}, "actions": {"permit": [null]}}]}}]}}`, "ports matched without TCP or UDP"},
		{"no actions", strings.Replace(ok, `, "actions": {"forwarding": "accept"}`, ``, 1), "entry without actions"},
		{"draft list without a direction", `{"ietf-mud:meta-data": {}, "ietf-access-control-list:access-lists": {"acl": [{"acl-name": "a"}]}}`, "in neither policy"},
		{"nested too deep", `{"ietf-mud:mud": ` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`, "nested more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text))
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("error %v (%T), want a *mud.Error", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestReadTooLarge refuses a file over MaxFileSize without reading it
// whole.
func TestReadTooLarge(t *testing.T) {
	big := `{"ietf-mud:mud": {"systeminfo": "` + strings.Repeat("x", MaxFileSize) + `"}}`
	_, err := Read(strings.NewReader(big))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
	if _, err := Parse([]byte(big)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Parse: error %v, want ErrTooLarge", err)
	}
}

// TestImportCannotInject writes a MUD file whose names and descriptions
// try to smuggle a rule into the output through a comment or a string.
func TestImportCannotInject(t *testing.T) {
	const evil = `x\n[[allow]]\nname = \"evil\"\nfrom = \"any\"\nto = \"any\"\n`
	text := strings.NewReplacer(`"model-name": "dev"`, `"model-name": "dev", "systeminfo": "`+evil+`"`,
		`{"name": "from"}`, `{"name": "`+evil+`"}`, `{"name": "from", "aces"`, `{"name": "`+evil+`", "aces"`).
		Replace(mudJSON(entry{FromDevice, `{"ipv4": {"protocol": 6, "destination-ipv4-network": "203.0.113.0/24"}}`, ""}))
	p, out := importText(t, text, nil)
	cfg, _, err := config.Parse(basePath, []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.Allows {
		if a.Name == "evil" {
			t.Fatalf("a rule was injected:\n%s", out)
		}
	}
	if len(p.Rules) != 1 || len(cfg.Allows) != 1 {
		t.Errorf("%d rules proposed, %d loaded; want 1 and 1\n%s", len(p.Rules), len(cfg.Allows), out)
	}
	// Nor can a name forge a commented-out rule, which the reviewer is
	// told to uncomment: what the file chose stays on its own line.
	for _, l := range strings.Split(out, "\n") {
		if uncommented := strings.TrimPrefix(l, "# "); strings.Contains(l, "evil") && (strings.HasPrefix(uncommented, "[[") || strings.HasPrefix(uncommented, "name =")) {
			t.Errorf("a name from the file wrote the line %q:\n%s", l, out)
		}
	}
}

// TestMappingErrors refuses mappings that cannot be meant.
func TestMappingErrors(t *testing.T) {
	for _, tc := range []struct{ pair, want string }{
		{"my-controller", "want ABSTRACTION=ENDPOINT"},
		{"my-controler=device:hub", "unknown abstraction"},
		{"my-controller=any", "want zone:NAME"},
		{"my-controller=device:a b", "a name is"},
		{"controller=device:hub", "needs its URI"},
		{"local-networks:x=zone:lan", "takes no value"},
		{"local-networks=net:10.0.0.0/33", "endpoint"},
	} {
		if err := (Mapping{}).Set(tc.pair); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.pair, err, tc.want)
		}
	}
	m := Mapping{}
	if err := m.Set("my-controller=device:hub"); err != nil {
		t.Fatal(err)
	}
	if err := m.Set("my-controller=device:other"); err == nil {
		t.Error("a second mapping for my-controller was taken")
	}
	err := m.ReadMapping("map.txt", strings.NewReader("# comment\n\nlocal-networks=zone:lan\nbogus\n"))
	if err == nil || !strings.Contains(err.Error(), "map.txt:4:") {
		t.Errorf("mapping file error %v, want one at map.txt:4", err)
	}
	// A mapping to a zone or device the base does not define is refused
	// before anything is written.
	f, err := Parse([]byte(mudJSON()))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(basePath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Import(f, Options{Map: Mapping{"local-networks": "zone:lann"}, Base: NamesOf(cfg)}); err == nil || !strings.Contains(err.Error(), `no zone "lann"`) {
		t.Errorf("unknown zone: error %v", err)
	}
	if _, err := Import(f, Options{Name: "hub", MAC: "02:00:00:00:00:99", Base: NamesOf(cfg)}); err == nil || !strings.Contains(err.Error(), "device \"hub\" already") {
		t.Errorf("device name taken: error %v", err)
	}
	if _, err := Import(f, Options{MAC: "02:00:00:00:00"}); err == nil {
		t.Error("a five-byte MAC was taken")
	}
}

// FuzzParse feeds arbitrary bytes to the parser. Whatever it accepts must
// import into the base policy and load: no name, comment or string a file
// chooses can break (or add to) the policy text.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(mudJSON(entry{FromDevice, `{"ietf-mud:mud": {"controller": "urn:x"}, "ipv6": {"protocol": 58}}`, ""},
		entry{ToDevice, `{"ipv4": {"ietf-acldns:src-dnsname": "a.example"}, "tcp": {"source-port": {"operator": "gte", "port": 1024}}}`, "drop"})))
	f.Add([]byte(`{"ietf-mud:mud": {"from-device-policy": {"access-lists": {"access-list": [{"name": "a"}]}}}, "ietf-access-control-list:acls": {"acl": [{"name": "a"}]}}`))
	cfg, _, err := config.Load(basePath)
	if err != nil {
		f.Fatal(err)
	}
	base, err := os.ReadFile(basePath)
	if err != nil {
		f.Fatal(err)
	}
	names := NamesOf(cfg)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("error %v (%T) is not a *mud.Error", err, err)
			}
			return
		}
		p, err := Import(file, Options{Name: "dev", MAC: "02:00:00:00:00:31", Base: names,
			Map: Mapping{"local-networks": "zone:lan", "my-controller": "device:hub"}})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := p.WriteTOML(&out, base); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Verify(basePath, out.Bytes()); err != nil {
			t.Fatalf("the proposal does not load: %v\n%s", err, out.String())
		}
	})
}

// TestSegmentNotes: a reviewer is told when the base's segments make the
// imported rules moot: an "allow" segment lets everything through, a
// "deny" one stops the rules' flows before they are judged.
func TestSegmentNotes(t *testing.T) {
	base, err := os.ReadFile(basePath)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(base), "from = \"iot\"\nto = \"wan\"\naction = \"micro\"", "from = \"iot\"\nto = \"wan\"\naction = \"allow\"", 1)
	text = strings.Replace(text, "from = \"iot\"\nto = \"lan\"\naction = \"micro\"", "from = \"iot\"\nto = \"lan\"\naction = \"deny\"", 1)
	if text == string(base) {
		t.Fatal("the base's segments were not edited")
	}
	data, err := os.ReadFile("testdata/rfc-camera.json")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	m := Mapping{"local-networks": "zone:lan", "my-controller": "device:hub"}
	for _, ips := range [][]string{{camIP}, nil} {
		p, err := Import(f, Options{IPs: ips, Map: m})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := p.WriteTOML(&out, []byte(text)); err != nil {
			t.Fatal(err)
		}
		pol, _, err := Verify(basePath, out.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		before := len(p.Notes)
		p.SegmentNotes(pol)
		notes := strings.Join(p.Notes[before:], "\n")
		if ips == nil {
			if notes != "" {
				t.Errorf("without the device's address its zone is unknown, yet: %s", notes)
			}
			continue
		}
		for _, want := range []string{`segment iot->wan is "allow": everything passes there, so cam-100-mud-1`, "segment iot->lan denies (or there is none): cam-100-mud-3 never applies"} {
			if !strings.Contains(notes, want) {
				t.Errorf("notes lack %q:\n%s", want, notes)
			}
		}
		if strings.Contains(notes, "lan->iot") {
			t.Errorf("the micro segment lan->iot is noted:\n%s", notes)
		}
	}
}

// TestWriteDevice writes the device in the policy's own spelling, and
// refuses (rather than writes) an address that is none.
func TestWriteDevice(t *testing.T) {
	for _, tc := range []struct {
		name string
		dev  Device
		want string // a line of the output, or the error
	}{
		{"MAC in another spelling", Device{Name: "dev", MAC: "02-00-00-00-00-AA"}, "\nmac = \"02:00:00:00:00:aa\"\n"},
		{"IPv6", Device{Name: "dev", IPs: []string{"FD00:77::31"}}, "\nip = [\"fd00:77::31\"]\n"},
		{"neither", Device{Name: "dev"}, "\n# [[device]]\n# name = \"dev\"\n# mac = \"02:00:00:00:00:00\"\n# groups = [\"dev\"]\n"},
		{"not a MAC", Device{Name: "dev", MAC: "02:00:00:00:00:aa\"\n[[allow]]"}, "MAC"},
		{"not an IP", Device{Name: "dev", IPs: []string{"fe80::1%eth0"}}, "IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Proposal{File: &File{}, Group: "dev", Device: tc.dev}
			var out bytes.Buffer
			got := ""
			if err := p.WriteTOML(&out, nil); err != nil {
				got = err.Error()
				if out.Len() > 0 {
					t.Errorf("an error, yet written:\n%s", out.String())
				}
			} else {
				got = out.String()
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("want %q in:\n%s", tc.want, got)
			}
		})
	}
}
