// Package concurtest is an in-process simulator of the parts of SAP Concur the
// plugin talks to: the OAuth2 token endpoint (company request token and refresh
// grants), Identity v4 and v4.1 user reads and searches, and connection
// revocation. Nothing in the test suite can reach real Concur, so the
// simulator follows the documented behaviour (see the project's reference
// notes, sections 2-8 and 11) and offers options wherever the documentation
// contradicts itself.
//
// Every data centre named in Options.DataCenters gets its own listener, so
// wrong-data-centre answers (code 16) and geolocation changes can be tested
// with real URLs. A data centre named LandingZone ("glz") is the Global
// Landing Zone: no company lives there, and it answers the company password
// grant for companies of every data centre (see Options.LandingZoneServesAll).
//
// A client may serve many companies, as an App Center partner does:
// AddCompany registers a known UUID, CreateCompany and NewCompany make new
// ones spread over the data centres, and CompanyStats counts each company's
// grants. Lookups are by map, so 10,000 companies cost no more per request
// than one (BenchmarkRefreshGrant10kCompanies).
package concurtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Server. The zero value is a usable stable-rotation,
// single data centre ("us2") simulator over plain HTTP.
type Options struct {
	Clock              *Clock        // nil -> NewClock(time.Now())
	Rotation           Rotation      // "" -> stable
	GraceWindow        time.Duration // grace mode: old refresh token stays valid this long; 0 -> 5m
	RequestTokenUses   int           // uses per company request token; 0 -> 5; negative -> unlimited
	DataCenters        []string      // names, each served on its own loopback listener; nil -> {"us2"}
	Geolocation        string        // if set, the geolocation value put in token responses (all DCs)
	ExpiresAsStrings   bool          // send expires_in / refresh_expires_in as numeric strings
	RefreshErrorStatus int           // HTTP status of code-108 answers; 0 -> 400
	UnauthorizedStatus int           // status for a bad/expired bearer at Identity; 0 -> 401 (403 allowed)
	Users              int           // simulated Identity users per company; 0 -> 25; negative -> none
	TLS                bool          // serve HTTPS with a generated certificate (Server.Client() trusts it)
	Logf               func(format string, args ...any)

	// RequestTokenTTL is the lifetime of a company request token; 0 -> 24h
	// (the older TMC guide says 12h).
	RequestTokenTTL time.Duration
	// RefreshTokenTTL is how far each grant pushes a refresh token's expiry;
	// 0 -> six calendar months.
	RefreshTokenTTL time.Duration
	// RejectCharset makes the token endpoint answer code 135 when the
	// Content-Type carries a charset parameter (the TMC guide says such
	// requests are rejected; other pages are silent).
	RejectCharset bool
	// AccessTokenTTL is the lifetime of issued access tokens (expires_in);
	// 0 -> AccessTokenLifetime. Short lifetimes let end-to-end tests watch
	// real renewals without waiting an hour.
	AccessTokenTTL time.Duration

	// TLSConfig, when set, serves HTTPS with this configuration (it must hold
	// a certificate); it implies TLS. Used by cmd/concur-sim for --tls-cert.
	TLSConfig *tls.Config

	// LandingZoneServesAll picks the other reading of the docs for the
	// landing zone. By default GLZ answers only what the Authentication
	// reference sends there (the password grant with credtype=authtoken,
	// answered with the company's geolocation); a refresh grant gets code 16
	// naming the company's data centre, as any data centre answers for a
	// company that is not its own, and API paths are 404, because refreshes
	// and API calls belong at the token's geolocation. With this set, GLZ is
	// a global front door that also answers refresh grants, Identity and
	// revocation for any company (as us.api answered for a us2 company in
	// SAP's 2023 tutorial run).
	LandingZoneServesAll bool

	// RequireCompanyID picks the strict reading of the Identity v4
	// reference, which marks companyId "required, if employeeNumber is
	// used": an employeeNumber filter without companyId is a 400. By default
	// (other pages, SAP's captures) employeeNumber works alone.
	RequireCompanyID bool

	// StrictPaths picks the references' literal paths: no merging of
	// repeated slashes, fixed segments only in the case the references
	// write them. By default the simulator reads paths as Concur's front
	// door does (see frontdoor.go). SetStrictPaths changes it later.
	StrictPaths bool
}

// LandingZone is the data-centre name of the Global Landing Zone
// (https://glz.api.concursolutions.com).
const LandingZone = "glz"

// Defaults for zero Options fields.
const (
	DefaultDataCenter      = "us2"
	DefaultGraceWindow     = 5 * time.Minute
	DefaultRequestTokenTTL = 24 * time.Hour
	DefaultRequestUses     = 5
	DefaultUsers           = 25
	AccessTokenLifetime    = time.Hour
)

// Server is a running simulator. URL is the first data centre's base URL
// (scheme://127.0.0.1:port); Clock drives every expiry.
type Server struct {
	URL   string
	Clock *Clock

	opts   Options
	dcs    []*dataCenter
	homes  []*dataCenter // the data centres companies can live in (not the landing zone)
	client *http.Client

	// mu guards all token and directory state below; counters and faults
	// have their own locks so that assertions never wait on a grant.
	mu            sync.Mutex
	rotation      Rotation
	clients       map[string]*client
	companies     map[string]*company
	companyOrder  []string // company UUIDs in creation order, for listings
	nextHome      int      // round-robin index into homes for NewCompany
	conns         map[connKey]*connection
	requestTokens map[string]*requestToken
	refreshTokens map[string]*refreshToken
	accessTokens  map[string]*accessToken
	users         map[string][]*simUser
	seq           uint64

	faults   faultQueues
	counters counters
	knobs    knobs
	jwt      jwtSigner
	admin    atomic.Pointer[adminSeed]

	strictPaths atomic.Bool

	closeOnce sync.Once
}

type dataCenter struct {
	name    string
	url     string
	ln      net.Listener
	srv     *http.Server
	handler http.Handler

	callsMu sync.Mutex
	calls   map[Endpoint]int // requests per endpoint, for CallsAt
}

func (dc *dataCenter) isLandingZone() bool { return dc.name == LandingZone }

func (dc *dataCenter) count(ep Endpoint) {
	dc.callsMu.Lock()
	defer dc.callsMu.Unlock()
	dc.calls[ep]++
}

// NewServer starts a simulator listening on 127.0.0.1 (one port per data
// centre). It panics when it cannot listen, like httptest.NewServer.
func NewServer(opts Options) *Server {
	s, err := newServer(nil, opts)
	if err != nil {
		panic("concurtest: " + err.Error())
	}
	return s
}

// NewServerOn starts a simulator whose first data centre is served on l (the
// standalone program needs a fixed address); further data centres get
// loopback listeners of their own. l is closed by Close/Shutdown.
func NewServerOn(l net.Listener, opts Options) (*Server, error) {
	if l == nil {
		return nil, errors.New("concurtest: nil listener")
	}
	return newServer(l, opts)
}

func newServer(first net.Listener, opts Options) (*Server, error) {
	opts = withDefaults(opts)
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	s := &Server{
		Clock:         opts.Clock,
		opts:          opts,
		rotation:      opts.Rotation,
		clients:       map[string]*client{},
		companies:     map[string]*company{},
		conns:         map[connKey]*connection{},
		requestTokens: map[string]*requestToken{},
		refreshTokens: map[string]*refreshToken{},
		accessTokens:  map[string]*accessToken{},
		users:         map[string][]*simUser{},
	}
	s.faults.init()
	s.counters.init()
	s.strictPaths.Store(opts.StrictPaths)

	tlsConf, roots, err := serverTLS(opts)
	if err != nil {
		return nil, err
	}
	s.client = &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		// Concur clients must never follow redirects; neither does this one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	for i, name := range opts.DataCenters {
		ln := first
		if i > 0 || ln == nil {
			if ln, err = (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
				s.Close()
				return nil, err
			}
		}
		s.serveDataCenter(name, ln, tlsConf)
	}
	s.URL = s.dcs[0].url
	return s, nil
}

// withDefaults fills in every option left at its zero value.
func withDefaults(opts Options) Options {
	if opts.Clock == nil {
		opts.Clock = NewClock(time.Now())
	}
	if opts.Rotation == "" {
		opts.Rotation = RotationStable
	}
	if opts.AccessTokenTTL <= 0 {
		opts.AccessTokenTTL = AccessTokenLifetime
	}
	if opts.GraceWindow == 0 {
		opts.GraceWindow = DefaultGraceWindow
	}
	if opts.RequestTokenUses == 0 {
		opts.RequestTokenUses = DefaultRequestUses
	}
	if opts.RequestTokenTTL == 0 {
		opts.RequestTokenTTL = DefaultRequestTokenTTL
	}
	if len(opts.DataCenters) == 0 {
		opts.DataCenters = []string{DefaultDataCenter}
	}
	if opts.RefreshErrorStatus == 0 {
		opts.RefreshErrorStatus = http.StatusBadRequest
	}
	if opts.UnauthorizedStatus == 0 {
		opts.UnauthorizedStatus = http.StatusUnauthorized
	}
	if opts.Users == 0 {
		opts.Users = DefaultUsers
	}
	return opts
}

// checkOptions rejects options no server can run with.
func checkOptions(opts Options) error {
	if !opts.Rotation.valid() {
		return fmt.Errorf("unknown rotation %q", opts.Rotation)
	}
	seen := map[string]bool{}
	for _, n := range opts.DataCenters {
		if n == "" || seen[n] {
			return fmt.Errorf("data centre names must be unique and non-empty: %q", opts.DataCenters)
		}
		seen[n] = true
	}
	if len(seen) == 1 && seen[LandingZone] {
		return fmt.Errorf("the landing zone %q needs a data centre for companies to live in", LandingZone)
	}
	return nil
}

// serveDataCenter starts data centre name on ln (wrapped in TLS when tlsConf is set).
func (s *Server) serveDataCenter(name string, ln net.Listener, tlsConf *tls.Config) {
	dc := &dataCenter{name: name, calls: map[Endpoint]int{}}
	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
	}
	dc.url = scheme + "://" + loopbackAddr(ln.Addr())
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	dc.ln = ln
	dc.handler = &dcHandler{s: s, dc: dc}
	dc.srv = &http.Server{
		Handler:           dc.handler,
		ReadHeaderTimeout: 30 * time.Second,
		// HTTP/2 is off so that the drop faults can hijack the connection.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     log.New(logWriter{s}, "", 0),
	}
	s.dcs = append(s.dcs, dc)
	if !dc.isLandingZone() {
		s.homes = append(s.homes, dc)
	}
	go func() { _ = dc.srv.Serve(ln) }()
}

// loopbackAddr turns a wildcard listen address into one a client can dial.
func loopbackAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// serverTLS returns the listener TLS config (nil for plain HTTP) and the root
// pool Server.Client() trusts.
func serverTLS(opts Options) (*tls.Config, *x509.CertPool, error) {
	if opts.TLSConfig != nil {
		conf := opts.TLSConfig.Clone()
		roots, err := x509.SystemCertPool()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		for _, c := range conf.Certificates {
			if len(c.Certificate) > 0 {
				if leaf, err := x509.ParseCertificate(c.Certificate[0]); err == nil {
					roots.AddCert(leaf)
				}
			}
		}
		return conf, roots, nil
	}
	if !opts.TLS {
		return nil, nil, nil
	}
	cert, leaf, err := selfSignedCert()
	if err != nil {
		return nil, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, roots, nil
}

// Close stops every listener at once and drops open connections.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		for _, dc := range s.dcs {
			_ = dc.srv.Close()
		}
		s.client.CloseIdleConnections()
	})
}

// Shutdown stops accepting requests and waits (until ctx is done) for
// in-flight ones to finish; cmd/concur-sim uses it on SIGINT/SIGTERM.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, dc := range s.dcs {
		if err := dc.srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.client.CloseIdleConnections()
	return errors.Join(errs...)
}

// Client returns an HTTP client that trusts the simulator's certificate and
// never follows redirects.
func (s *Server) Client() *http.Client { return s.client }

// URLOf returns the base URL of a data centre, "" when there is none by that name.
func (s *Server) URLOf(dataCenter string) string {
	if dc := s.dcByName(dataCenter); dc != nil {
		return dc.url
	}
	return ""
}

// DataCenters lists the data-centre names in order (the first is Server.URL).
func (s *Server) DataCenters() []string {
	names := make([]string, len(s.dcs))
	for i, dc := range s.dcs {
		names[i] = dc.name
	}
	return names
}

// Handler returns the first data centre's handler, for mounting behind
// another listener. Geolocation values still name the simulator's own
// listeners unless Options.Geolocation is set.
func (s *Server) Handler() http.Handler { return s.dcs[0].handler }

// HandlerFor returns the handler of the named data centre (nil if unknown).
func (s *Server) HandlerFor(dataCenter string) http.Handler {
	if dc := s.dcByName(dataCenter); dc != nil {
		return dc.handler
	}
	return nil
}

// CallsAt returns how many requests for ep the named data centre received
// (faulted ones included) since it started.
func (s *Server) CallsAt(dataCenter string, ep Endpoint) int {
	dc := s.dcByName(dataCenter)
	if dc == nil {
		return 0
	}
	dc.callsMu.Lock()
	defer dc.callsMu.Unlock()
	return dc.calls[ep]
}

// DataCenterOf names the data centre a company lives in ("" if unknown).
func (s *Server) DataCenterOf(companyUUID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.companies[companyUUID]; c != nil {
		return c.dc
	}
	return ""
}

// homeDataCenter is where companies live unless told otherwise: the first
// data centre that is not the landing zone.
func (s *Server) homeDataCenter() *dataCenter {
	return s.homes[0] // newServer refuses a landing zone alone
}

// answersGrant reports whether dc runs grant for a company: its own data
// centre always; the landing zone the company password grant, and refresh
// grants too under LandingZoneServesAll. Everyone else answers code 16.
func (s *Server) answersGrant(dc *dataCenter, co *company, grant string) bool {
	if co.dc == dc.name {
		return true
	}
	return dc.isLandingZone() && (grant == "password" || s.opts.LandingZoneServesAll)
}

func (s *Server) dcByName(name string) *dataCenter {
	for _, dc := range s.dcs {
		if dc.name == name {
			return dc
		}
	}
	return nil
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// logWriter routes net/http's own complaints (TLS handshake errors and the
// like) to Logf instead of the process's stderr.
type logWriter struct{ s *Server }

func (w logWriter) Write(p []byte) (int, error) {
	w.s.logf("concur-sim: http: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// dcHandler serves one data centre: it stamps the correlation id, routes,
// counts, applies injected faults and logs one line per request.
type dcHandler struct {
	s  *Server
	dc *dataCenter
}

// call carries what a request handler needs besides the request itself.
type call struct {
	dc    *dataCenter
	cid   string
	body  []byte // token endpoint: the raw form body (read once, before faults)
	grant string
	// company is who a token request is about, for the counters ("" if
	// unknown; see grantCompany).
	company string
}

const maxRequestBody = 1 << 20

func (h *dcHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	c := &call{dc: h.dc, cid: correlationID(r)}
	// Every answer, errors and faults included, carries the header.
	w.Header().Set("Concur-Correlationid", c.cid)
	rec := &recorder{ResponseWriter: w}
	outcome := ""

	s.throughFrontDoor(r)
	ep, known := route(r.URL.Path)
	switch {
	case strings.HasPrefix(r.URL.Path, "/_sim/") && s.admin.Load() != nil:
		s.serveAdmin(rec, r)
	case !known:
		s.writeNotModelled(rec, r)
	case h.dc.isLandingZone() && (ep == EndpointUsers || ep == EndpointConnections) && !s.opts.LandingZoneServesAll:
		// The landing zone issues tokens; APIs live at the token's geolocation.
		writeGatewayError(rec, http.StatusNotFound, "NOT_FOUND", "no such endpoint", r.URL.Path, s.Clock.Now())
	default:
		if ep == EndpointToken {
			body, err := io.ReadAll(http.MaxBytesReader(rec, r.Body, maxRequestBody))
			if err != nil {
				writeGatewayError(rec, http.StatusRequestEntityTooLarge, "BAD_REQUEST", "request body too large", r.URL.Path, s.Clock.Now())
				break
			}
			c.body = body
		}
		peek := peekGrant(r, c.body)
		c.grant, c.company = peek.grant, s.grantCompany(peek)
		s.counters.call(ep, peek.grant, peek.refresh, c.company)
		h.dc.count(ep)
		outcome = s.serveWithFaults(rec, r, ep, c)
	}

	status := fmt.Sprint(rec.status)
	switch {
	case strings.HasPrefix(outcome, "drop"):
		status = "none"
	case rec.status == 0:
		status = "200"
	}
	if outcome != "" {
		status += " fault=" + outcome
	}
	grant := c.grant
	if grant == "" {
		grant = "-"
	}
	// Path only: the query may carry filter values, and nothing else is
	// safe to print (form bodies hold secrets).
	s.logf("concur-sim: dc=%s %s %s status=%s grant_type=%s correlation_id=%s",
		h.dc.name, r.Method, r.URL.Path, status, grant, c.cid)
}

// route maps a path to the endpoint it belongs to.
func route(path string) (Endpoint, bool) {
	switch path {
	case "/oauth2/v0/token":
		return EndpointToken, true
	case "/app-mgmt/v0/connections":
		return EndpointConnections, true
	case "/oauth2/v0/jwks":
		return EndpointJWKS, true
	}
	if _, ok := parseIdentityPath(path); ok {
		return EndpointUsers, true
	}
	return "", false
}

// serve dispatches to the endpoint's handler (no faults).
func (s *Server) serve(w http.ResponseWriter, r *http.Request, ep Endpoint, c *call) {
	switch ep {
	case EndpointToken:
		s.handleToken(w, r, c)
	case EndpointConnections:
		s.handleConnections(w, r, c)
	case EndpointUsers:
		s.handleUsers(w, r, c)
	case EndpointJWKS:
		s.handleJWKS(w, r)
	}
}

// recorder remembers the status for the log line; Unwrap lets
// http.ResponseController reach the connection for hijacking.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// correlationID echoes a sane client-supplied concur-correlationid (Concur
// accepts one) and otherwise makes a fresh UUID.
func correlationID(r *http.Request) string {
	if v := r.Header.Get("Concur-Correlationid"); v != "" && len(v) <= 128 && printableToken(v) {
		return v
	}
	return newUUID()
}

func printableToken(v string) bool {
	for _, c := range v {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}
