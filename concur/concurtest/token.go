package concurtest

import (
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// Concur OAuth2 error codes the simulator answers with (reference 5.2);
// concur owns the table, the simulator uses its names.
const (
	CodeBadCredentials      = concur.CodeIncorrectCredentials // invalid_grant: bad, expired or used-up request token
	CodeWrongDataCenter     = concur.CodeWrongDataCenter      // invalid_request: "user lives elsewhere" + geolocation
	CodeNoUsername          = concur.CodeNoUsername
	CodeNoPassword          = concur.CodeNoPassword
	CodeCompanyNotEnabled   = concur.CodeCompanyNotEnabled // invalid_client
	CodeClientDisabled      = concur.CodeClientDisabled    // access_denied
	CodeGrantNotAllowed     = concur.CodeGrantNotAllowed   // invalid_grant
	CodeClientNotFound      = concur.CodeClientNotFound    // invalid_client
	CodeNoClientID          = concur.CodeNoClientID
	CodeNoClientSecret      = concur.CodeNoClientSecret
	CodeBadClientSecret     = concur.CodeBadClientSecret // invalid_client
	CodeNoGrantType         = concur.CodeNoGrantType
	CodeNoRefreshToken      = concur.CodeNoRefreshToken
	CodeBadRefreshToken     = concur.CodeBadRefreshToken // invalid_grant
	CodeBadCredtype         = concur.CodeBadCredtype
	CodeUnsupportedFormat   = concur.CodeUnsupportedFormat  // invalid_request: not a form body
	CodeAuthtokenNotForYou  = concur.CodeAuthtokenNotForYou // invalid_request: request token of another client
	descIncorrectCredential = "Incorrect Credentials. Please Retry"
)

// oauthError is an answer in Concur's OAuth2 error shape.
type oauthError struct {
	status int
	body   map[string]any
	code   int
}

func newOAuthError(status int, errName, desc string, code int) *oauthError {
	return &oauthError{status: status, code: code,
		body: map[string]any{"error": errName, "error_description": desc, "code": code}}
}

// withGeo adds the fields Concur's documented code-16 and code-108 examples
// carry in the body besides the standard three.
func (e *oauthError) withGeo(geo, cid string) *oauthError {
	e.body["geolocation"] = geo
	e.body["concur-correlationid"] = cid
	return e
}

func (s *Server) writeOAuthError(w http.ResponseWriter, c *call, e *oauthError) {
	s.counters.errorCode(e.code, c.company)
	writeJSON(w, e.status, e.body)
}

// isForm reports whether the Content-Type is a form (and, with
// RejectCharset, one without a charset parameter).
func isForm(ct string, rejectCharset bool) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return false
	}
	_, hasCharset := params["charset"]
	return !rejectCharset || !hasCharset
}

// peekedGrant is what the counters need from a token request.
type peekedGrant struct {
	grant    string // grant_type
	refresh  string // the refresh token presented (refresh grant)
	username string // the company UUID named (password grant)
}

// peekGrant reads the form for the counters; it runs before faults so
// faulted attempts are counted too.
func peekGrant(r *http.Request, body []byte) peekedGrant {
	if len(body) == 0 || !isForm(r.Header.Get("Content-Type"), false) {
		return peekedGrant{}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return peekedGrant{}
	}
	p := peekedGrant{grant: form.Get("grant_type")}
	switch p.grant {
	case "refresh_token":
		p.refresh = form.Get("refresh_token")
	case "password":
		p.username = form.Get("username")
	}
	return p
}

// grantCompany names the company a token request is about, for the
// counters: the refresh token's company, or the company the password grant
// names; "" when the simulator knows no such token or company. Map lookups
// only, so a request costs the same with 1 or 10,000 companies.
func (s *Server) grantCompany(p peekedGrant) string {
	if p.refresh == "" && p.username == "" {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.refreshTokens[p.refresh]; p.refresh != "" && t != nil {
		return t.company
	}
	if co := s.companies[p.username]; p.username != "" && co != nil {
		return co.uuid
	}
	return ""
}

// handleToken is POST /oauth2/v0/token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, c *call) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.writeOAuthError(w, c, newOAuthError(http.StatusMethodNotAllowed, "invalid_request", "method not allowed", 0))
		return
	}
	// Form body only: JSON (or anything else) is code 135. Credentials in
	// the query string are ignored because only the body is parsed.
	if !isForm(r.Header.Get("Content-Type"), s.opts.RejectCharset) {
		s.writeOAuthError(w, c, newOAuthError(http.StatusBadRequest, "invalid_request", "unsupported request format", CodeUnsupportedFormat))
		return
	}
	form, err := url.ParseQuery(string(c.body))
	if err != nil {
		s.writeOAuthError(w, c, newOAuthError(http.StatusBadRequest, "invalid_request", "unsupported request format", CodeUnsupportedFormat))
		return
	}
	res, oerr := s.grant(form, c)
	if oerr != nil {
		s.writeOAuthError(w, c, oerr)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, res)
}

// grant authenticates the client and runs the grant under the state lock.
func (s *Server) grant(form url.Values, c *call) (map[string]any, *oauthError) {
	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	if clientID == "" {
		return nil, newOAuthError(http.StatusBadRequest, "invalid_request", "client_id was not supplied", CodeNoClientID)
	}
	if secret == "" {
		return nil, newOAuthError(http.StatusBadRequest, "invalid_request", "client_secret was not supplied", CodeNoClientSecret)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cl := s.clients[clientID]
	switch {
	case cl == nil:
		return nil, newOAuthError(http.StatusBadRequest, "invalid_client", "client not found", CodeClientNotFound)
	case cl.secret != secret:
		return nil, newOAuthError(http.StatusBadRequest, "invalid_client", descIncorrectCredential, CodeBadClientSecret)
	case !cl.enabled:
		return nil, newOAuthError(http.StatusBadRequest, "access_denied", "client disabled", CodeClientDisabled)
	}
	switch form.Get("grant_type") {
	case "":
		return nil, newOAuthError(http.StatusBadRequest, "invalid_request", "grant_type was not supplied", CodeNoGrantType)
	case "password":
		return s.passwordGrantLocked(cl, form, c)
	case "refresh_token":
		return s.refreshGrantLocked(cl, form, c)
	default:
		// Only company tokens exist here; other grants are not enabled for the app.
		return nil, newOAuthError(http.StatusBadRequest, "invalid_grant", "these are not the grants you are looking for", CodeGrantNotAllowed)
	}
}

func (s *Server) passwordGrantLocked(cl *client, form url.Values, c *call) (map[string]any, *oauthError) {
	username, password := form.Get("username"), form.Get("password")
	if username == "" {
		return nil, newOAuthError(http.StatusBadRequest, "invalid_request", "username was not supplied", CodeNoUsername)
	}
	if password == "" {
		return nil, newOAuthError(http.StatusBadRequest, "invalid_request", "password was not supplied", CodeNoPassword)
	}
	switch form.Get("credtype") {
	case "authtoken":
	case "", "password":
		// Without credtype=authtoken Concur treats username/password as a
		// user login, which a company UUID and request token never are.
		return nil, newOAuthError(http.StatusBadRequest, "invalid_grant", descIncorrectCredential, CodeBadCredentials)
	default:
		return nil, newOAuthError(http.StatusBadRequest, "invalid_request", "credtype is invalid", CodeBadCredtype)
	}
	co := s.companies[username]
	if co == nil {
		return nil, newOAuthError(http.StatusBadRequest, "invalid_grant", descIncorrectCredential, CodeBadCredentials)
	}
	if !s.answersGrant(c.dc, co, "password") {
		return nil, s.wrongDC(co, c)
	}
	if co.disabledFor[cl.id] {
		// D-MIG: 403 "for companies that are not authorized by their administrators".
		return nil, newOAuthError(http.StatusForbidden, "invalid_client", "company is not enabled for this client", CodeCompanyNotEnabled)
	}
	now := s.Clock.Now()
	rt := s.requestTokens[password]
	switch {
	case rt == nil:
		return nil, newOAuthError(http.StatusBadRequest, "invalid_grant", descIncorrectCredential, CodeBadCredentials)
	case rt.clientID != cl.id:
		return nil, newOAuthError(http.StatusBadRequest, "invalid_request", "Authtoken was not issued for you", CodeAuthtokenNotForYou)
	case rt.company != username, !now.Before(rt.expires), rt.usesLeft == 0:
		return nil, newOAuthError(http.StatusBadRequest, "invalid_grant", descIncorrectCredential, CodeBadCredentials)
	}
	if rt.usesLeft > 0 {
		rt.usesLeft--
	}
	refresh := s.storeRefreshLocked(newUUID(), cl.id, co.uuid, now)
	return s.tokenResponseLocked(cl, co, refresh, c, now), nil
}

func (s *Server) refreshGrantLocked(cl *client, form url.Values, c *call) (map[string]any, *oauthError) {
	presented := form.Get("refresh_token")
	if presented == "" {
		return nil, newOAuthError(http.StatusBadRequest, "invalid_request", "refresh_token was not supplied", CodeNoRefreshToken)
	}
	now := s.Clock.Now()
	t := s.refreshTokens[presented]
	if t != nil && !t.live(now) {
		s.counters.deadRefresh(t.company)
	}
	if t == nil || t.clientID != cl.id {
		return nil, s.badRefresh(s.geolocation(c.dc), c)
	}
	co := s.companies[t.company]
	if !s.answersGrant(c.dc, co, "refresh_token") {
		return nil, s.wrongDC(co, c)
	}
	if !t.live(now) {
		return nil, s.badRefresh(s.geolocation(c.dc), c)
	}
	if co.disabledFor[cl.id] {
		return nil, newOAuthError(http.StatusForbidden, "invalid_client", "company is not enabled for this client", CodeCompanyNotEnabled)
	}
	next := t
	switch s.rotation {
	case RotationStable:
		// Same value; its expiry slides to now + lifetime.
		t.expires = s.refreshExpiry(now)
	case RotationRotate:
		t.revoked = true
		next = s.storeRefreshLocked(newUUID(), cl.id, co.uuid, now)
	case RotationGrace:
		// The old value lives on for the grace window (never longer than it
		// would have anyway), so a client whose response was lost can retry.
		if end := now.Add(s.opts.GraceWindow); end.Before(t.expires) {
			t.expires = end
		}
		next = s.storeRefreshLocked(newUUID(), cl.id, co.uuid, now)
	}
	return s.tokenResponseLocked(cl, co, next, c, now), nil
}

func (s *Server) wrongDC(co *company, c *call) *oauthError {
	return newOAuthError(http.StatusBadRequest, "invalid_request", "user lives elsewhere", CodeWrongDataCenter).
		withGeo(s.URLOf(co.dc), c.cid)
}

func (s *Server) badRefresh(geo string, c *call) *oauthError {
	return newOAuthError(s.opts.RefreshErrorStatus, "invalid_grant", "bad or expired refresh token", CodeBadRefreshToken).
		withGeo(geo, c.cid)
}

// geolocation is what token responses name as the base URL for later calls.
func (s *Server) geolocation(dc *dataCenter) string {
	if s.opts.Geolocation != "" {
		return s.opts.Geolocation
	}
	return dc.url
}

// tokenResponseLocked mints an access token and id token and builds the
// success body of both grants.
func (s *Server) tokenResponseLocked(cl *client, co *company, refresh *refreshToken, c *call, now time.Time) map[string]any {
	// The company's data centre, also when the landing zone answered.
	geo := s.geolocation(s.dcByName(co.dc))
	exp := now.Add(s.opts.AccessTokenTTL)
	access := s.signJWT(map[string]any{
		"sub":            co.uuid,
		"iss":            geo,
		"aud":            "*",
		"exp":            exp.Unix(),
		"nbf":            now.Unix(),
		"iat":            now.Unix(),
		"concur.scopes":  cl.scopes,
		"concur.type":    "company",
		"concur.version": 3,
	})
	s.storeAccessLocked(&accessToken{value: access, clientID: cl.id, company: co.uuid, scopes: cl.scopes, expires: exp})
	idToken := s.signJWT(map[string]any{
		"sub":            s.idTokenSubject(co.uuid),
		"iss":            geo,
		"aud":            cl.id,
		"exp":            exp.Unix(),
		"nbf":            now.Unix(),
		"iat":            now.Unix(),
		"concur.type":    "company",
		"concur.version": 2,
	})
	var expiresIn, refreshExpires any = int64(s.opts.AccessTokenTTL / time.Second), refresh.expires.Unix()
	if s.opts.ExpiresAsStrings {
		expiresIn = strconv.FormatInt(expiresIn.(int64), 10)
		refreshExpires = strconv.FormatInt(refreshExpires.(int64), 10)
	}
	return map[string]any{
		"access_token":       access,
		"token_type":         "Bearer",
		"expires_in":         expiresIn,
		"refresh_token":      refresh.value,
		"refresh_expires_in": refreshExpires,
		"geolocation":        geo,
		"id_token":           idToken,
		"scope":              strings.Join(cl.scopes, " "),
	}
}

// bearer authenticates an API call. It returns the token, or the status to
// answer with: 401 without credentials, UnauthorizedStatus for a token that
// is unknown, expired or revoked.
func (s *Server) bearer(r *http.Request) (*accessToken, int) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, http.StatusUnauthorized
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	// The docs write "BEARER"; the scheme is case-insensitive.
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return nil, http.StatusUnauthorized
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.accessTokens[strings.TrimSpace(tok)]
	if t == nil || t.revoked || !s.Clock.Now().Before(t.expires) {
		return nil, s.opts.UnauthorizedStatus
	}
	cp := *t
	return &cp, 0
}

func (s *Server) writeUnauthorized(w http.ResponseWriter, r *http.Request, status int) {
	id, msg := "UNAUTHORIZED", "missing or invalid bearer token"
	if status == http.StatusForbidden {
		id, msg = "FORBIDDEN", "invalid, expired or revoked token"
	}
	writeGatewayError(w, status, id, msg, r.URL.Path, s.Clock.Now())
}

// handleConnections is DELETE /app-mgmt/v0/connections: the bearer's client
// revokes its connection to the bearer's company.
func (s *Server) handleConnections(w http.ResponseWriter, r *http.Request, c *call) {
	if r.Method != http.MethodDelete {
		w.Header().Set("Allow", http.MethodDelete)
		writeGatewayError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method not allowed", r.URL.Path, s.Clock.Now())
		return
	}
	t, status := s.bearer(r)
	if t == nil {
		s.writeUnauthorized(w, r, status)
		return
	}
	s.RevokeConnection(t.clientID, t.company)
	w.WriteHeader(http.StatusOK)
}
