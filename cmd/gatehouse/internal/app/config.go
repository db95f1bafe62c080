package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/gateway"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"
)

// Config is the server's typed configuration. Each field's yaml tag is also
// its flag name and, upper-cased with GATEHOUSE_ in front and '-' as '_', its
// environment variable. Precedence: flags > environment > config file >
// defaults.
type Config struct {
	DataDir string `yaml:"data-dir" help:"directory for the embedded database, master key, CA and certificates"`
	Listen  string `yaml:"listen" help:"TLS listen address (host:port)"`
	// Host is empty unless set: the node then uses localhost with the port
	// it listens on (main.go), so changing --listen alone keeps every URL
	// it prints right.
	Host      string `yaml:"host" help:"public authority H (host[:port]) clients use (default: localhost with the listen port)"`
	MSIListen string `yaml:"msi-listen" help:"loopback address of the managed-identity endpoint (plain HTTP)"`
	Postgres  string `yaml:"postgres" help:"PostgreSQL DSN; when empty the embedded SQLite in the data dir is used"`
	TLSCert   string `yaml:"tls-cert" help:"operator-supplied TLS certificate (PEM chain); default: issued by Gatehouse's own CA"`
	TLSKey    string `yaml:"tls-key" help:"private key for --tls-cert"`
	// MasterKeyFile holds the keyring's master key versions. When neither it
	// nor GATEHOUSE_MASTER_KEY is set, the data dir's master.key is used,
	// generated on a new store's first start (keys.go).
	MasterKeyFile string `yaml:"master-key-file" help:"file with the master key versions (default: the data dir's master.key, which serve generates for a new store)"`
	// MasterKey is the key source itself. Environment only (a key on a
	// command line or in a config file is too easy to leak).
	MasterKey string `yaml:"-" env:"GATEHOUSE_MASTER_KEY"`
	LogFormat string `yaml:"log-format" help:"log format: text or json"`
	LogLevel  string `yaml:"log-level" help:"log level: debug, info, warn or error"`
	// BootstrapFile receives the bootstrap credentials as JSON (0600)
	// instead of printing the secret.
	BootstrapFile string `yaml:"bootstrap-file" help:"write the bootstrap credentials as JSON to this file (0600) instead of printing them"`
	// Identity authority (issue 3).
	SigningAlg         string        `yaml:"signing-alg" help:"algorithm of new token signing keys: ES256 or RS256"`
	SigningKeyRotation time.Duration `yaml:"signing-key-rotation" help:"how long a token signing key signs before the next one takes over"`
	TokenLifetime      time.Duration `yaml:"token-lifetime" help:"lifetime of access tokens from the token and managed-identity endpoints"`
	// Dev creates demo resources on first start.
	Dev bool `yaml:"dev" help:"development mode: make sure a demo Language account exists (made on the first start, recovered if deleted since) and print its key and a ready curl line"`
	// EndpointForm is the data-plane URL accounts advertise (gateway.go).
	EndpointForm string `yaml:"endpoint-form" help:"data-plane URL in accounts' properties.endpoint: path (https://H/ai/{account}/) or host (https://{account}.cognitiveservices.H/)"`
	// CORSOrigins is which browser origins may call the data plane
	// (gateway/cors.go).
	CORSOrigins string `yaml:"cors-origins" help:"browser origins that may call the AI data plane: * (any, as Azure AI services), a comma-separated list of scheme://host[:port], or empty for none"`
	// PrivateNetworks are the client networks whose requests count as
	// private-endpoint traffic for accounts' and vaults' network rules
	// (netacl).
	// ProxyProtocol are the load balancers whose PROXY protocol header
	// gives a connection's client address (main.go).
	ProxyProtocol string `yaml:"proxy-protocol" help:"comma-separated addresses and CIDR ranges of load balancers that pass connections through with a PROXY protocol (v1 or v2) header naming the client; from them the header's address is the client's (network rules, audit, STS limits), from anywhere else a header is not read"`
	// UpstreamNetworks are the networks deployments' upstreams may be in
	// (gateway, accounts).
	UpstreamNetworks string `yaml:"upstream-networks" help:"comma-separated addresses and CIDR ranges of the only networks deployments' upstream model servers may be in (checked on every resolved address the gateway connects to); empty: any but link-local and cloud platform addresses (metadata services)"`
	PrivateNetworks  string `yaml:"private-networks" help:"comma-separated addresses and CIDR ranges whose clients count as private-endpoint traffic: not subject to accounts' and vaults' network rules (networkAcls), and served when they disable public network access"`
	// MetricsNetworks are the clients /metrics answers (server.MountOps):
	// it names every account and deployment.
	MetricsNetworks string `yaml:"metrics-networks" help:"comma-separated addresses and CIDR ranges of the clients (Prometheus) that may read /metrics, which names every account and deployment; others get 403"`
	// Key Vault (vault.go).
	KeyVaultChallengeTenant string        `yaml:"keyvault-challenge-tenant" help:"tenant the Key Vault challenge names: adfs (clients configured by environment, az), default (the default tenant's GUID, for code that disables instance discovery) or a tenant GUID"`
	VaultPurgeInterval      time.Duration `yaml:"vault-purge-interval" help:"how often soft-deleted secrets and vaults past their retention are purged"`
	// AccountRetention is how long a deleted AI account stays recoverable
	// (accounts/softdelete.go); 0 deletes accounts at once.
	AccountRetention time.Duration `yaml:"account-retention" help:"how long a deleted AI account stays recoverable (az cognitiveservices account recover) before it is purged, as Azure's 48 hours; 0 deletes accounts at once"`
	// Upstream keys from Key Vault (upstream.go) and people's sessions (authority/refresh.go).
	UpstreamTimeout      time.Duration `yaml:"upstream-timeout" help:"how long a deployment's upstream may stay silent (before its answer's head, and between two reads of its body or stream) before the request is answered 504 GatewayTimeout (a stream under way is cut off)"`
	UpstreamSecretTTL    time.Duration `yaml:"upstream-secret-ttl" help:"longest a deployment's upstream credential read from Key Vault is reused (a change to the secret or to roles applies at once)"`
	RefreshTokenLifetime time.Duration `yaml:"refresh-token-lifetime" help:"how long a person's CLI session (refresh token) lasts unused; each use renews it, up to 90 days"`
	// Models is the model catalog file (catalog.go): the models
	// deployments may name without an upstream of their own.
	Models string `yaml:"models" help:"model catalog file (YAML): the models every OpenAI and AIServices account may deploy by name alone, as on Azure (az cognitiveservices account deployment create --model-name), and the upstream servers that serve them"`
	// DeploymentQuotas enforces deployments' sku capacity (gateway/quota.go).
	DeploymentQuotas bool `yaml:"deployment-quotas" help:"enforce each deployment's sku capacity as Azure OpenAI's quota: 1,000 tokens and 6 requests a minute per unit, per node (off: capacity is kept, not enforced)"`
	// HTTP1FastPath serves clean HTTP/1.1 requests without net/http
	// (server/h1), of every surface; off, net/http serves every connection.
	HTTP1FastPath bool `yaml:"http1-fast-path" help:"serve clean HTTP/1.1 requests (of every surface) on the fast path, server/h1 (off: net/http serves every request)"`
	// RawSyscalls makes the node's sockets read and write with raw system
	// calls (internal/rawconn); off, with ordinary ones.
	RawSyscalls bool `yaml:"raw-syscalls" help:"read and write the node's sockets (clients and upstreams) with raw system calls, which spare Go's scheduler a hand-off per slow call (Linux; off: ordinary system calls, to compare or should a platform mind)"`
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown-timeout" help:"how long graceful shutdown waits for requests in flight"`
	// BodyTimeout bounds a stall in a request body (h1.Server.BodyTimeout,
	// server.Middleware.BodyTimeout).
	// Workers runs the node as that many processes on one port
	// (workers.go).
	Workers     int           `yaml:"workers" help:"run the node as this many processes sharing its ports (SO_REUSEPORT), each a node of the PostgreSQL cluster with an even share of the cores: on a busy data plane two processes of one core serve more than one of two (Linux; needs --postgres; rate limits and quotas are per worker, as per node)"`
	BodyTimeout time.Duration `yaml:"body-timeout" help:"how long a request body may stall (nothing arriving) before the request is answered 408 and its connection closed, as nginx's client_body_timeout"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		DataDir:                 "./gatehouse-data",
		Listen:                  "127.0.0.1:8443",
		MSIListen:               "127.0.0.1:8444",
		SigningAlg:              "ES256",
		SigningKeyRotation:      24 * time.Hour,
		TokenLifetime:           time.Hour,
		LogFormat:               "text",
		LogLevel:                "info",
		ShutdownTimeout:         20 * time.Second,
		BodyTimeout:             time.Minute,
		HTTP1FastPath:           true,
		RawSyscalls:             true,
		EndpointForm:            EndpointFormPath,
		CORSOrigins:             "*",
		KeyVaultChallengeTenant: ChallengeTenantADFS,
		VaultPurgeInterval:      time.Hour,
		AccountRetention:        accounts.DefaultRetention,
		UpstreamSecretTTL:       time.Minute,
		UpstreamTimeout:         5 * time.Minute,
		RefreshTokenLifetime:    14 * 24 * time.Hour,
		MetricsNetworks:         "127.0.0.0/8,::1",
		Workers:                 1,
	}
}

// ConfigField describes one settable field, for flags and help.
type ConfigField struct {
	Name, Env, Help string
	Default         string
	Bool            bool
}

// Fields lists the settable fields (those with a flag name).
func Fields() []ConfigField {
	def := DefaultConfig()
	v := reflect.ValueOf(def)
	t := v.Type()
	var out []ConfigField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("yaml")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, ConfigField{Name: name, Env: envName(name), Help: f.Tag.Get("help"),
			Default: format(v.Field(i)), Bool: f.Type.Kind() == reflect.Bool})
	}
	return out
}

func envName(flag string) string {
	return "GATEHOUSE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func format(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return shortDuration(x)
	case bool:
		return strconv.FormatBool(x)
	default:
		return fmt.Sprint(x)
	}
}

// shortDuration is d as a person writes it: "48h", "1m", "90s", not
// Duration.String's "48h0m0s" (both parse back to d).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Set sets the field whose flag name is name from its string form.
func (c *Config) Set(name, value string) error {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("yaml") != name {
			continue
		}
		f := v.Field(i)
		switch f.Interface().(type) {
		case string:
			f.SetString(value)
		case bool:
			b, err := strconv.ParseBool(value)
			if err != nil {
				return fmt.Errorf("%s: %q is not true or false", name, value)
			}
			f.SetBool(b)
		case int:
			n, err := strconv.Atoi(value)
			if err != nil {
				return fmt.Errorf("%s: %q is not a whole number", name, value)
			}
			f.SetInt(int64(n))
		case time.Duration:
			d, err := time.ParseDuration(value)
			if err != nil {
				return fmt.Errorf("%s: %q is not a duration (like 20s)", name, value)
			}
			f.SetInt(int64(d))
		}
		return nil
	}
	return fmt.Errorf("unknown setting %q", name)
}

// LoadFile overlays a YAML config file. Unknown keys and malformed YAML are
// errors naming the file. A key whose value does not fit its setting is one
// error each (errors.Join), and the file's other keys still apply, so that
// Check can report them beside every other problem.
func (c *Config) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file is a valid, empty configuration (io.EOF).
	err = dec.Decode(c)
	if te, ok := errors.AsType[*yaml.TypeError](err); ok {
		errs := make([]error, len(te.Errors))
		for i, e := range te.Errors {
			errs[i] = fmt.Errorf("config file %s: %s", path, yamlProblem(e))
		}
		return errors.Join(errs...)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %v", path, err)
	}
	return nil
}

// ApplyEnv overlays GATEHOUSE_* variables found by lookup.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	var errs []error
	for _, f := range Fields() {
		if val, ok := lookup(f.Env); ok {
			if err := c.Set(f.Name, val); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f.Env, err))
			}
		}
	}
	if val, ok := lookup("GATEHOUSE_MASTER_KEY"); ok {
		c.MasterKey = val
	}
	return errors.Join(errs...)
}

// Check reports every problem at once: those found while the settings
// were layered (the errors of LoadFile, ApplyEnv and Set, each kept value
// left as it was), then Validate's. It writes nothing.
func (c *Config) Check(layering ...error) error {
	var problems []string
	var flatten func(err error)
	flatten = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				flatten(e)
			}
		} else if err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, err := range layering {
		flatten(err)
	}
	if ce, ok := errors.AsType[*ConfigError](c.Validate()); ok {
		problems = append(problems, ce.Problems...)
	}
	if len(problems) == 0 {
		return nil
	}
	return &ConfigError{Problems: problems}
}

// Validate reports every problem of the values at once. It writes nothing.
func (c *Config) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if c.DataDir == "" {
		add("data-dir: must not be empty")
	} else if st, err := os.Stat(c.DataDir); err == nil && !st.IsDir() {
		add("data-dir: %s is not a directory", c.DataDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		add("data-dir: %v", err)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q is not host:port", c.Listen)
	}
	if c.Host != "" {
		if err := validateHost(c.Host); err != nil {
			add("host: %v", err)
		}
	}
	if h, _, err := net.SplitHostPort(c.MSIListen); err != nil {
		add("msi-listen: %q is not host:port", c.MSIListen)
	} else if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
		add("msi-listen: %q must be a loopback address: the managed-identity endpoint is plain HTTP", c.MSIListen)
	} else if _, port, _ := net.SplitHostPort(c.MSIListen); port != "0" && sameListenAddress(c.MSIListen, c.Listen) {
		add("msi-listen: %q is the listen address: give the managed-identity endpoint an address of its own (port 0 picks a free one)", c.MSIListen)
	}
	if c.Postgres != "" {
		if _, err := pgx.ParseConfig(c.Postgres); err != nil {
			add("postgres: the DSN does not parse (check its syntax)")
		}
	}
	switch {
	case c.Workers < 1 || c.Workers > MaxWorkers:
		add("workers: %d is not between 1 and %d", c.Workers, MaxWorkers)
	case c.Workers > 1 && !workersSupported:
		add("workers: more than one worker needs Linux (SO_REUSEPORT spreading connections over processes)")
	case c.Workers > 1 && c.Postgres == "":
		add("workers: more than one worker needs --postgres: each worker is a node, and nodes share PostgreSQL (the embedded SQLite is one process's)")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		add("tls-cert and tls-key: give both or neither")
	}
	for _, f := range []struct{ name, path string }{{"tls-cert", c.TLSCert}, {"tls-key", c.TLSKey}, {"master-key-file", c.MasterKeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			add("%s: %v", f.name, err)
		}
	}
	if c.MasterKeyFile != "" && c.MasterKey != "" {
		add("master-key-file and GATEHOUSE_MASTER_KEY: give one, not both")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		add("log-format: %q is not text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("log-level: %q is not debug, info, warn or error", c.LogLevel)
	}
	if c.SigningAlg != "ES256" && c.SigningAlg != "RS256" {
		add("signing-alg: %q is not ES256 or RS256", c.SigningAlg)
	}
	if c.SigningKeyRotation < time.Hour {
		add("signing-key-rotation: must be at least 1h")
	}
	if c.TokenLifetime < 5*time.Minute || c.TokenLifetime > 24*time.Hour {
		add("token-lifetime: must be between 5m and 24h")
	}
	if !validEndpointForm(c.EndpointForm) {
		add("endpoint-form: %q is not path or host", c.EndpointForm)
	}
	if _, err := gateway.ParseCORSOrigins(c.CORSOrigins); err != nil {
		add("%v", err)
	}
	if _, err := netacl.ParsePrefixes(c.PrivateNetworks); err != nil {
		add("private-networks: %v", err)
	}
	if _, err := netacl.ParsePrefixes(c.ProxyProtocol); err != nil {
		add("proxy-protocol: %v", err)
	}
	if _, err := netacl.ParsePrefixes(c.MetricsNetworks); err != nil {
		add("metrics-networks: %v", err)
	}
	if upstreams, err := netacl.ParsePrefixes(c.UpstreamNetworks); err != nil {
		add("upstream-networks: %v", err)
	} else if _, err := loadCatalog(c.Models, os.LookupEnv, upstreams); err != nil {
		add("models: %v", err)
	}
	if !validChallengeTenant(c.KeyVaultChallengeTenant) {
		add("keyvault-challenge-tenant: %q is not adfs, default or a tenant GUID", c.KeyVaultChallengeTenant)
	}
	if c.VaultPurgeInterval <= 0 {
		add("vault-purge-interval: must be positive")
	}
	if c.AccountRetention != 0 && (c.AccountRetention < time.Hour || c.AccountRetention > 90*24*time.Hour) {
		add("account-retention: must be 0 (no soft delete) or between 1h and 2160h (90 days)")
	}
	if c.ShutdownTimeout < 0 {
		add("shutdown-timeout: must not be negative")
	}
	if c.BodyTimeout < time.Second || c.BodyTimeout > time.Hour {
		add("body-timeout: must be between 1s and 1h")
	}
	if c.UpstreamTimeout < time.Second || c.UpstreamTimeout > time.Hour {
		add("upstream-timeout: must be between 1s and 1h")
	}
	if c.UpstreamSecretTTL < time.Second || c.UpstreamSecretTTL > time.Hour {
		add("upstream-secret-ttl: must be between 1s and 1h")
	}
	if c.RefreshTokenLifetime < time.Hour || c.RefreshTokenLifetime > 90*24*time.Hour {
		add("refresh-token-lifetime: must be between 1h and 2160h (90 days)")
	}
	if len(problems) == 0 {
		return nil
	}
	return &ConfigError{Problems: problems}
}

// ConfigError lists every problem found by Validate.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// sameListenAddress reports whether two host:port listen addresses would
// bind the same socket (a wildcard host binds every address).
func sameListenAddress(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	norm := func(h string) string {
		if h == "localhost" {
			return "127.0.0.1"
		}
		if ip := net.ParseIP(h); ip != nil {
			return ip.String()
		}
		return h
	}
	return wild(ha) || wild(hb) || norm(ha) == norm(hb)
}

func validateHost(h string) error {
	if scheme, _, ok := strings.Cut(h, "://"); ok {
		return fmt.Errorf("%q is a URL: give the host name (and port) alone, without %s://", h, scheme)
	}
	host := h
	if hh, port, err := net.SplitHostPort(h); err == nil {
		host = hh
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has an invalid port", h)
		}
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if host == "" || len(host) > 200 {
		return fmt.Errorf("%q is not a host name", h)
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q is not a host name", h)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q is not a host name", h)
			}
		}
	}
	return nil
}

// unknownField is yaml.v3's message for a key KnownFields refuses; it
// names the Go type, which means nothing to whoever wrote the file.
var unknownField = regexp.MustCompile(`^(line \d+: )field (\S+) not found in type .*$`)

// yamlProblem is one of a yaml.TypeError's messages as a user reads it:
// "line 5: unknown key foo".
func yamlProblem(msg string) string {
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		return m[1] + "unknown key " + m[2]
	}
	return msg
}
