package config

// TLSRule is [allow.tls]: what a TLS ClientHello may ask for.
type TLSRule struct {
	// ServerNames are the allowed server names (SNI): exact, or "*.suffix"
	// for any name below suffix. Empty: any name.
	ServerNames []string
	// NoSNI is "deny" or "allow": a ClientHello without a server name.
	// The default is "deny" when ServerNames is set, else "allow".
	NoSNI string
	// ECH is "deny" or "allow": a ClientHello offering Encrypted
	// ClientHello, whose outer name is the provider's, not the server's.
	// "allow" judges the outer name. Default as for NoSNI.
	ECH string
	Pos Pos
}

func decodeTLSRule(t table, r *AppRule) {
	t.checkKeys("server_names", "no_sni", "ech")
	tr := &TLSRule{Pos: t.Pos()}
	if t.has("server_names") {
		tr.ServerNames = t.nameList("server_names")
	}
	def := UnidentifiedAllow
	if len(tr.ServerNames) > 0 {
		def = UnidentifiedDeny
	}
	tr.NoSNI = t.choice("no_sni", def, "deny", "allow")
	tr.ECH = t.choice("ech", def, "deny", "allow")
	r.TLS = tr
}
