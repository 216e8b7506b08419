// Command concur-sim runs the SAP Concur simulator (package concurtest) as a
// standalone process for `make dev` and for tests that need a separate
// process. It prints exactly one line on stdout,
//
//	concur-sim listening on http://127.0.0.1:PORT
//
// logs one line per request on stderr (never a secret), serves the /_sim/
// admin endpoints (see concurtest.Server.EnableAdmin) and exits 0 after a
// graceful shutdown on SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Fixed defaults so that `concur-sim` with no flags is reproducible. They
// are simulator values, not real credentials.
const (
	defaultListen       = "127.0.0.1:18080"
	defaultClientID     = "5f0d6d0c-5b0e-4a77-9c61-3f1e4b0c2a11"
	defaultClientSecret = "0b6b4f3e-9a4e-4d6f-8f5c-7d7e2c1a9b00" //nolint:gosec // G101: the simulator's own, documented above
	defaultCompanyUUID  = "aa076ada-80a9-4f57-8e98-9300b1c3171d"
	shutdownTimeout     = 10 * time.Second
	maxCompanies        = 1_000_000 // a typo guard: 10,000 is the goal scale
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, stop))
}

type config struct {
	listen, clientID, clientSecret, companyUUID string
	requestToken, refreshToken                  string
	rotation                                    string
	grace, requestTokenTTL, accessTokenTTL      time.Duration
	requestTokenUses, users, companies          int
	tlsCert, tlsKey, geolocation                string
	dataCenters, companyDC, scopes              string
	expiresAsStrings, rejectCharset             bool
	landingZoneServesAll, requireCompanyID      bool
	strictPaths                                 bool
	refreshErrorStatus, unauthorizedStatus      int
}

// adminHelp is the --help text after the flags: the /_sim/ control API.
const adminHelp = `
Admin API (acts on --client-id and --company-uuid; reveals tokens by design):
  GET  /_sim/users | /_sim/current-refresh-token | /_sim/stats
  POST /_sim/request-token | /_sim/refresh-token | /_sim/revoke | /_sim/clear-faults | /_sim/reset-counters
       users, current-refresh-token, stats, request-token, refresh-token, revoke and id-token-subject
       act on another company of the client given "company_uuid" (?company_uuid=... or in the JSON body)
  POST /_sim/companies {"data_center":"...","users":N} (both optional)   a new company of the client:
       {"company_uuid","request_token","data_center"}; data centres in turn, 3 users; unknown data centre: 400
  GET  /_sim/companies   [{"company_uuid","data_center"}], --company-uuid and --companies included
  POST /_sim/rotation {"rotation":"stable|rotate|grace"}      POST /_sim/clock/advance {"seconds":N}
  POST /_sim/fault {"endpoint":"token|users|connections|jwks","count":N,"kind":K, ...}
       status       "status" (default 503), "retry_after"
       delay        wait "delay_ms", then answer normally
       malformed | oversized ("size") | drop    nothing is processed
       drop-after   processed for real, then the connection is closed unanswered
       hold         processed for real, the answer held "delay_ms" after the state changed
       wrong-types  processed for real; 2xx answer with "fields" of the wrong JSON type
                    (default scope, token_type, geolocation, expires_in)
       truncate     processed for real; answer cut after "truncate_at" bytes (0: half)
       oauth-error  Concur's OAuth2 error "code" (any code of the reference table) in Concur's
                    exact shape; "status" (default 400, 403 for 53), "geolocation" for 16 and 108
  POST /_sim/id-token-subject {"sub":"..."}   id_tokens of the company name this sub ("" resets)
  POST /_sim/deprecation {"endpoint":E,"warning":"...","sunset":"..."}   x-api-warn / sunset headers
  POST /_sim/strict-paths {"strict":true|false}   the references' literal paths, or the front door's reading
  GET  /_sim/stats counts calls, grants, error codes, "refresh_token_uses" and
       "dead_refresh_token_presented" (refresh grants that presented a revoked, rotated-away or expired
       refresh token); with ?company_uuid=... those of one company (its token requests and grants).
Token endpoint extras: GET /oauth2/v0/jwks serves the RS256 key that signs access and id tokens.
`

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("concur-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHeader)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), adminHelp)
	}
	fs.StringVar(&c.listen, "listen", defaultListen, "address of the first data centre (port 0 picks a free one)")
	fs.StringVar(&c.clientID, "client-id", defaultClientID, "OAuth2 client id to register")
	fs.StringVar(&c.clientSecret, "client-secret", defaultClientSecret, "OAuth2 client secret to register")
	fs.StringVar(&c.companyUUID, "company-uuid", defaultCompanyUUID, "company UUID to register")
	fs.StringVar(&c.requestToken, "request-token", "", "company request token to register; empty generates one (printed on stderr)")
	fs.StringVar(&c.refreshToken, "refresh-token", "", "refresh token to register as live (none if empty)")
	fs.StringVar(&c.rotation, "rotation", "stable", "refresh-token rotation: stable, rotate or grace")
	fs.DurationVar(&c.grace, "grace", concurtest.DefaultGraceWindow, "grace window of the old refresh token in grace rotation")
	fs.IntVar(
		&c.requestTokenUses,
		"request-token-uses",
		concurtest.DefaultRequestUses,
		"successful grants per request token (negative: unlimited)",
	)
	fs.DurationVar(&c.requestTokenTTL, "request-token-ttl", concurtest.DefaultRequestTokenTTL, "request token lifetime")
	fs.DurationVar(
		&c.accessTokenTTL,
		"access-token-ttl",
		concurtest.AccessTokenLifetime,
		"access token lifetime (expires_in); shorten it to watch renewals",
	)
	fs.IntVar(&c.users, "users", concurtest.DefaultUsers, "simulated Identity users of the company")
	fs.IntVar(&c.companies, "companies", 0, fmt.Sprintf("extra companies of the client to create at start, spread over the "+
		"data centres in turn, %d users each (GET /_sim/companies lists them; POST /_sim/request-token with their "+
		"company_uuid gives request tokens)", concurtest.DefaultCompanyUsers))
	fs.StringVar(&c.tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (needs --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&c.geolocation, "geolocation", "", "geolocation value put in token responses (default: the data centre's own URL)")
	fs.StringVar(&c.dataCenters, "data-centers", concurtest.DefaultDataCenter,
		"comma-separated data-centre names; the first is served on --listen, the others on free loopback ports. "+
			"\""+concurtest.LandingZone+"\" is the Global Landing Zone (see above)")
	fs.StringVar(&c.companyDC, "company-data-center", "", "data centre the company lives in (default: the first that is not "+
		concurtest.LandingZone+"); others answer code 16")
	fs.BoolVar(&c.landingZoneServesAll, "landing-zone-serves-all", false, "the landing zone also answers refresh grants, Identity and "+
		"revocation for any company (the other reading of the docs)")
	fs.BoolVar(&c.requireCompanyID, "require-company-id", false, "Identity v4 answers 400 to an employeeNumber filter without companyId "+
		"(the strict reading of the v4 reference)")
	fs.BoolVar(&c.strictPaths, "strict-paths", false, "only the references' literal paths: no merging of repeated slashes, "+
		"Users/Schemas/... only in the references' case (default: as Concur's front door, which SAP's own clients rely on)")
	fs.StringVar(&c.scopes, "scopes", "", "comma-separated scopes of the client (default: openid and every identity.user.*.read)")
	fs.BoolVar(&c.expiresAsStrings, "expires-as-strings", false, "send expires_in and refresh_expires_in as numeric strings")
	fs.BoolVar(&c.rejectCharset, "reject-charset", false, "answer code 135 to a form Content-Type with a charset")
	fs.IntVar(&c.refreshErrorStatus, "refresh-error-status", 400, "HTTP status of code-108 answers")
	fs.IntVar(&c.unauthorizedStatus, "unauthorized-status", 401, "HTTP status for a bad or expired bearer token (401 or 403)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	switch concurtest.Rotation(c.rotation) {
	case concurtest.RotationStable, concurtest.RotationRotate, concurtest.RotationGrace:
	default:
		return nil, fmt.Errorf("--rotation must be stable, rotate or grace, not %q", c.rotation)
	}
	if c.companies < 0 || c.companies > maxCompanies {
		return nil, fmt.Errorf("--companies must be between 0 and %d, not %d", maxCompanies, c.companies)
	}
	if c.clientID == "" || c.clientSecret == "" || c.companyUUID == "" {
		return nil, errors.New("--client-id, --client-secret and --company-uuid must not be empty")
	}
	return c, nil
}

const usageHeader = `Usage: concur-sim [flags]

Runs the SAP Concur simulator: the OAuth2 token endpoint, Identity v4 and
v4.1 (Users, .search, Schemas, ResourceTypes, ServiceProviderConfig) and
connection revocation, one loopback listener per data centre. Any other
path is a 404 saying it is not modelled (docs/concur-sim.md).

Landing zone: name a data centre "` + concurtest.LandingZone + `" (for example
--data-centers ` + concurtest.LandingZone + `,us2,eu2) to get the Global Landing Zone, where Concur's
Authentication reference sends the company password grant (credtype=authtoken).
It answers that grant for a company of any data centre, with the company's
geolocation; other data centres answer code 16 for companies not theirs.
Refresh grants belong at the geolocation: the landing zone answers them with
code 16 naming it, and API paths there are 404, unless
--landing-zone-serves-all. No company lives in the landing zone.

Flags:
`

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// seed registers the client, its companies and their tokens, turns the
// admin API on and says on stderr what is where.
func seed(s *concurtest.Server, c *config, stderr io.Writer) {
	s.AddClient(c.clientID, c.clientSecret, splitList(c.scopes)...)
	s.AddCompany(c.companyUUID, c.companyDC)
	if c.requestToken == "" {
		// A simulated secret, so it goes to stderr only, and only because
		// nobody else knows it.
		fmt.Fprintln(stderr, "concur-sim: generated request token:", s.NewRequestToken(c.clientID, c.companyUUID))
	} else {
		s.AddRequestToken(c.clientID, c.companyUUID, c.requestToken)
	}
	if c.refreshToken != "" {
		s.AddRefreshToken(c.clientID, c.companyUUID, c.refreshToken)
	}
	for range c.companies {
		s.NewCompany("")
	}
	s.EnableAdmin(c.clientID, c.companyUUID)

	for _, dc := range s.DataCenters() {
		fmt.Fprintf(stderr, "concur-sim: data centre %s at %s\n", dc, s.URLOf(dc))
	}
	fmt.Fprintf(stderr, "concur-sim: client id %s, company %s (lives in %s)\n", c.clientID, c.companyUUID,
		s.DataCenterOf(c.companyUUID))
	if c.companies > 0 {
		fmt.Fprintf(stderr, "concur-sim: %d more companies (GET /_sim/companies lists them)\n", c.companies)
	}
}

// run is main without the process: tests call it with their own writers
// and stop channel. It returns the exit code.
func run(args []string, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "concur-sim:", err)
		return 2
	}
	logger := log.New(stderr, "", log.LstdFlags|log.Lmicroseconds)
	opts := concurtest.Options{
		Rotation:           concurtest.Rotation(c.rotation),
		GraceWindow:        c.grace,
		RequestTokenUses:   c.requestTokenUses,
		RequestTokenTTL:    c.requestTokenTTL,
		AccessTokenTTL:     c.accessTokenTTL,
		DataCenters:        splitList(c.dataCenters),
		Geolocation:        c.geolocation,
		ExpiresAsStrings:   c.expiresAsStrings,
		RejectCharset:      c.rejectCharset,
		RefreshErrorStatus: c.refreshErrorStatus,
		UnauthorizedStatus: c.unauthorizedStatus,
		Users:              c.users,
		Logf:               logger.Printf,

		LandingZoneServesAll: c.landingZoneServesAll,
		RequireCompanyID:     c.requireCompanyID,
		StrictPaths:          c.strictPaths,
	}
	if c.users == 0 {
		opts.Users = -1 // the flag says 0 users; Options treats 0 as "default"
	}
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			fmt.Fprintln(stderr, "concur-sim: loading TLS key pair:", err)
			return 1
		}
		opts.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", c.listen)
	if err != nil {
		fmt.Fprintln(stderr, "concur-sim:", err)
		return 1
	}
	s, err := concurtest.NewServerOn(l, opts)
	if err != nil {
		_ = l.Close()
		fmt.Fprintln(stderr, "concur-sim:", err)
		return 1
	}
	if c.companyDC != "" && (s.URLOf(c.companyDC) == "" || c.companyDC == concurtest.LandingZone) {
		s.Close()
		fmt.Fprintf(stderr, "concur-sim: --company-data-center %q is not a data centre of --data-centers a company can live in\n", c.companyDC)
		return 2
	}
	seed(s, c, stderr)
	fmt.Fprintf(stdout, "concur-sim listening on %s\n", s.URL)

	sig := <-stop
	fmt.Fprintf(stderr, "concur-sim: %v, shutting down\n", sig)
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		// In-flight requests (e.g. a long delay fault) outlived the grace
		// period; cut them off. Stopping was still what was asked for.
		fmt.Fprintln(stderr, "concur-sim: forced close:", err)
		s.Close()
	}
	return 0
}
