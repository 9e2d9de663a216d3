package alert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/picoseg/picoseg/pkg/config"
)

// SinkConfig describes one alert destination. The config loader embeds it;
// Validate checks it without touching the network or the files.
type SinkConfig struct {
	// Type is "syslog" or "jsonl".
	Type string
	// Address is where syslog alerts go: "" for the local socket
	// /dev/log, "unix:///path" for another local socket, or a remote
	// receiver as "udp://host:port", "tcp://host:port" or
	// "tls://host:port" (ports default to 514, 514 and 6514).
	Address string
	// CA is a PEM file of the certificates that may sign a tls://
	// receiver's certificate; "" trusts the system's roots.
	CA string
	// Cert and Key are a PEM client certificate and key, for receivers
	// that authenticate their senders; both or neither.
	Cert, Key string
	// Facility is the syslog facility keyword (default "daemon").
	Facility string
	// Path is the jsonl file; rotated files get .1, .2, ... appended.
	Path string
	// MaxSize is the size in bytes at which the jsonl file is rotated
	// (default 10 MiB).
	MaxSize int64
	// Keep is how many rotated jsonl files to keep (default 5).
	Keep int
}

// Sink types.
const (
	SinkSyslog = "syslog"
	SinkJSONL  = "jsonl"
)

// ConfigError is a problem in a SinkConfig: which field, and what is wrong
// with it. The config loader adds the file position.
type ConfigError struct {
	Field string // the SinkConfig field, lower case: "address", "path", ...
	Err   error
}

var _ error = (*ConfigError)(nil)

func (e *ConfigError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Validate checks the configuration: a known type, a well-formed address,
// and no field that does not apply to the type (a typo would otherwise be
// silently ignored, and the operator left without alerts).
func (c *SinkConfig) Validate() error {
	_, err := c.parse()
	return err
}

// endpoint is a parsed syslog address.
type endpoint struct {
	network  string // "unixgram" (local), "udp", "tcp" or "tls"
	address  string // socket path or host:port
	hostname string // for TLS server name verification
}

func (c *SinkConfig) parse() (endpoint, error) {
	switch c.Type {
	case SinkSyslog:
		if c.Path != "" || c.MaxSize != 0 || c.Keep != 0 {
			return endpoint{}, fieldErr("path", "path, max_size and keep are for jsonl sinks, not syslog")
		}
		if _, err := ParseFacility(c.Facility); err != nil {
			return endpoint{}, &ConfigError{Field: "facility", Err: err}
		}
		ep, err := parseAddress(c.Address)
		if err != nil {
			return endpoint{}, &ConfigError{Field: "address", Err: err}
		}
		if ep.network != "tls" && (c.CA != "" || c.Cert != "" || c.Key != "") {
			return endpoint{}, fieldErr("ca", "ca, cert and key need a tls:// address")
		}
		if (c.Cert == "") != (c.Key == "") {
			return endpoint{}, fieldErr("cert", "cert and key go together")
		}
		return ep, nil
	case SinkJSONL:
		if c.Address != "" || c.CA != "" || c.Cert != "" || c.Key != "" || c.Facility != "" {
			return endpoint{}, fieldErr("address", "address, ca, cert, key and facility are for syslog sinks, not jsonl")
		}
		if c.Path == "" {
			return endpoint{}, fieldErr("path", "a jsonl sink needs a path")
		}
		if c.MaxSize < 0 {
			return endpoint{}, fieldErr("max_size", "must not be negative")
		}
		if c.Keep < 0 {
			return endpoint{}, fieldErr("keep", "must not be negative")
		}
		return endpoint{}, nil
	case "":
		return endpoint{}, fieldErr("type", `missing: want "syslog" or "jsonl"`)
	}
	return endpoint{}, fieldErr("type", `unknown sink type %q: want "syslog" or "jsonl"`, c.Type)
}

func parseAddress(addr string) (endpoint, error) {
	if addr == "" {
		return endpoint{network: "unixgram", address: DefaultLocalSocket}, nil
	}
	u, err := url.Parse(addr)
	if err != nil {
		return endpoint{}, err
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, fmt.Errorf("%q: want scheme://host:port only", addr)
	}
	var port string
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return endpoint{}, fmt.Errorf("%q: want unix:///absolute/path", addr)
		}
		return endpoint{network: "unixgram", address: u.Path}, nil
	case "udp", "tcp":
		port = "514"
	case "tls":
		port = "6514"
	default:
		return endpoint{}, fmt.Errorf("%q: scheme must be unix, udp, tcp or tls", addr)
	}
	if u.Path != "" && u.Path != "/" {
		return endpoint{}, fmt.Errorf("%q: a %s address has no path", addr, u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		return endpoint{}, fmt.Errorf("%q: missing host", addr)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	return endpoint{network: u.Scheme, address: net.JoinHostPort(host, port), hostname: host}, nil
}

// Name describes the destination, e.g. "syslog tls://logs.example:6514".
func (c *SinkConfig) Name() string {
	switch {
	case c.Type == SinkJSONL:
		return "jsonl " + c.Path
	case c.Address == "":
		return "syslog " + DefaultLocalSocket
	}
	return c.Type + " " + c.Address
}

// OpenSink validates c, loads its TLS files and starts the sink. It fails
// only on configuration problems (a bad address, an unreadable CA file); a
// receiver that is down is retried in the background.
func OpenSink(c SinkConfig, opts SinkOptions) (*Sink, error) {
	ep, err := c.parse()
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if c.Type == SinkJSONL {
		maxSize, keep := c.MaxSize, c.Keep
		if maxSize == 0 {
			maxSize = DefaultMaxSize
		}
		if keep == 0 {
			keep = DefaultKeep
		}
		return NewSink(c.Name(), dialJSONL(c.Path, maxSize, keep), opts), nil
	}
	fac, _ := ParseFacility(c.Facility)
	h := header{facility: fac, hostname: opts.Hostname, pid: opts.PID}
	switch ep.network {
	case "unixgram":
		return NewSink(c.Name(), dialLocal(ep.address, h), opts), nil
	case "tls":
		conf, err := c.tlsConfig(ep.hostname)
		if err != nil {
			return nil, err
		}
		return NewSink(c.Name(), dialRemote("tcp", ep.address, conf, h), opts), nil
	}
	return NewSink(c.Name(), dialRemote(ep.network, ep.address, nil, h), opts), nil
}

func (c *SinkConfig) tlsConfig(serverName string) (*tls.Config, error) {
	// The receiver's name is always verified: alerts name the devices of
	// the network and say what is blocked, worth hiding from a
	// man in the middle.
	conf := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, &ConfigError{Field: "ca", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{Field: "ca", Err: errors.New(c.CA + ": no PEM certificate in it")}
		}
		conf.RootCAs = pool
	}
	if c.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, &ConfigError{Field: "cert", Err: err}
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// ConfigSinks turns the policy's [[alert.sink]] tables into sink settings
// and checks them, pointing every problem at the key it is about. With no
// sink written, alerts go to the local syslog.
func ConfigSinks(cfg *config.Config) ([]SinkConfig, error) {
	if len(cfg.Alert.Sinks) == 0 {
		return []SinkConfig{{Type: SinkSyslog}}, nil
	}
	var out []SinkConfig
	var errs config.ErrorList
	for _, s := range cfg.Alert.Sinks {
		c := SinkConfig{Type: s.Type, Address: s.Address, CA: s.CA, Cert: s.Cert, Key: s.Key,
			Facility: s.Facility, Path: s.Path, MaxSize: s.MaxSize, Keep: s.Keep}
		if err := c.Validate(); err != nil {
			pos := s.Pos
			var ce *ConfigError
			if errors.As(err, &ce) {
				if p, ok := s.FieldPos[ce.Field]; ok {
					pos = p
				}
			}
			errs = append(errs, &config.Error{Pos: pos, Msg: "[[alert.sink]]: " + err.Error()})
			continue
		}
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}
