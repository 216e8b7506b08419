package concurtest

import (
	"fmt"
	"time"
)

// Rotation says what a refresh grant does to the refresh token presented.
type Rotation string

const (
	// RotationStable returns the same value (the documented "most of the time").
	RotationStable Rotation = "stable"
	// RotationRotate returns a new value; the old one dies at once (strictest).
	RotationRotate Rotation = "rotate"
	// RotationGrace returns a new value; the old one stays valid for GraceWindow.
	RotationGrace Rotation = "grace"
)

func (r Rotation) valid() bool {
	return r == RotationStable || r == RotationRotate || r == RotationGrace
}

// Identity read scopes (reference 7.2) and the OIDC scope.
const (
	ScopeOpenID                    = "openid"
	ScopeIdentityIDsRead           = "identity.user.ids.read"
	ScopeIdentityCoreRead          = "identity.user.core.read"
	ScopeIdentityCoreSensitiveRead = "identity.user.coresensitive.read"
	ScopeIdentityEnterpriseRead    = "identity.user.enterprise.read"
	ScopeIdentitySAPRead           = "identity.user.sap.read"
)

// DefaultScopes is what AddClient grants when given no scopes.
func DefaultScopes() []string {
	return []string{ScopeOpenID, ScopeIdentityIDsRead, ScopeIdentityCoreRead,
		ScopeIdentityCoreSensitiveRead, ScopeIdentityEnterpriseRead, ScopeIdentitySAPRead}
}

type client struct {
	id, secret string
	scopes     []string
	enabled    bool
}

type company struct {
	uuid string
	dc   string
	// users is how many Identity users the company gets; 0 -> Options.Users,
	// negative -> none.
	users int
	// disabledFor holds client ids the company has not (or no longer)
	// enabled: code 53. Companies are enabled for every client by default;
	// nil until one is disabled, so that 10,000 companies stay small.
	disabledFor map[string]bool
}

// connKey names a connection: one client's tokens for one company.
type connKey struct{ clientID, company string }

// connection lists a connection's tokens in issue order, so that revoking
// it or finding its current refresh token costs its own tokens, not every
// token of every company.
type connection struct {
	refresh []*refreshToken
	access  []*accessToken
}

type requestToken struct {
	clientID, company string
	expires           time.Time
	usesLeft          int // negative: unlimited
}

type refreshToken struct {
	value             string
	clientID, company string
	expires           time.Time
	revoked           bool
	seq               uint64 // issue order, for CurrentRefreshToken
}

func (t *refreshToken) live(now time.Time) bool { return !t.revoked && now.Before(t.expires) }

type accessToken struct {
	value             string
	clientID, company string
	scopes            []string
	expires           time.Time
	revoked           bool
}

// AddClient registers (or replaces) an OAuth2 client, enabled. No scopes
// means "openid" plus every identity.user.*.read scope.
func (s *Server) AddClient(id, secret string, scopes ...string) {
	if len(scopes) == 0 {
		scopes = DefaultScopes()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = &client{id: id, secret: secret, scopes: append([]string(nil), scopes...), enabled: true}
}

// SetClientEnabled enables or disables a client; a disabled one gets code 59.
func (s *Server) SetClientEnabled(id string, enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clients[id]; c != nil {
		c.enabled = enabled
	}
}

// AddCompany registers a company at a data centre ("" -> the first that is
// not the landing zone). Calling it again for a known company moves it (its
// geolocation changes). It panics on an unknown data centre name or the
// landing zone: that is a bug in the test.
func (s *Server) AddCompany(companyUUID, dataCenter string) {
	if dataCenter == "" {
		dataCenter = s.homeDataCenter().name
	}
	if dc := s.dcByName(dataCenter); dc == nil || dc.isLandingZone() {
		panic(fmt.Sprintf("concurtest: %q is not a data centre companies can live in", dataCenter))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.companies[companyUUID]; c != nil {
		c.dc = dataCenter
		return
	}
	s.addCompanyLocked(&company{uuid: companyUUID, dc: dataCenter})
}

// addCompanyLocked registers a new company; companyOrder keeps creation
// order for listings.
func (s *Server) addCompanyLocked(c *company) {
	s.companies[c.uuid] = c
	s.companyOrder = append(s.companyOrder, c.uuid)
}

// SetCompanyEnabled says whether a company has enabled a client; a grant for
// a company that has not gets code 53.
func (s *Server) SetCompanyEnabled(clientID, companyUUID string, enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.companyLocked(companyUUID)
	switch {
	case enabled:
		delete(c.disabledFor, clientID)
	case c.disabledFor == nil:
		c.disabledFor = map[string]bool{clientID: true}
	default:
		c.disabledFor[clientID] = true
	}
}

// companyLocked returns the company, registering an unknown one at the first
// data centre so that seeding helpers work without an AddCompany call.
func (s *Server) companyLocked(companyUUID string) *company {
	c := s.companies[companyUUID]
	if c == nil {
		c = &company{uuid: companyUUID, dc: s.homeDataCenter().name}
		s.addCompanyLocked(c)
	}
	return c
}

// NewRequestToken issues a company request token ("at-..."), valid for
// RequestTokenTTL and RequestTokenUses successful grants.
func (s *Server) NewRequestToken(clientID, companyUUID string) string {
	v := newRequestTokenValue()
	s.AddRequestToken(clientID, companyUUID, v)
	return v
}

// AddRequestToken registers token as a fresh company request token.
func (s *Server) AddRequestToken(clientID, companyUUID, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.companyLocked(companyUUID)
	s.requestTokens[token] = &requestToken{
		clientID: clientID, company: companyUUID,
		expires:  s.Clock.Now().Add(s.opts.RequestTokenTTL),
		usesLeft: s.opts.RequestTokenUses,
	}
}

// NewRefreshToken seeds a refresh token as if a grant had issued it now.
func (s *Server) NewRefreshToken(clientID, companyUUID string) string {
	v := newUUID()
	s.AddRefreshToken(clientID, companyUUID, v)
	return v
}

// AddRefreshToken registers token as a live refresh token (full lifetime).
func (s *Server) AddRefreshToken(clientID, companyUUID, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.companyLocked(companyUUID)
	s.storeRefreshLocked(token, clientID, companyUUID, s.Clock.Now())
}

func (s *Server) storeRefreshLocked(value, clientID, companyUUID string, now time.Time) *refreshToken {
	if old := s.refreshTokens[value]; old != nil {
		// Re-seeded value: the replaced entry must not stay live in its
		// connection's list.
		old.revoked = true
	}
	s.seq++
	t := &refreshToken{value: value, clientID: clientID, company: companyUUID,
		expires: s.refreshExpiry(now), seq: s.seq}
	s.refreshTokens[value] = t
	conn := s.connLocked(clientID, companyUUID)
	conn.refresh = append(conn.refresh, t)
	return t
}

func (s *Server) storeAccessLocked(t *accessToken) {
	s.accessTokens[t.value] = t
	conn := s.connLocked(t.clientID, t.company)
	conn.access = append(conn.access, t)
}

func (s *Server) connLocked(clientID, companyUUID string) *connection {
	k := connKey{clientID: clientID, company: companyUUID}
	conn := s.conns[k]
	if conn == nil {
		conn = &connection{}
		s.conns[k] = conn
	}
	return conn
}

func (s *Server) refreshExpiry(now time.Time) time.Time {
	if s.opts.RefreshTokenTTL > 0 {
		return now.Add(s.opts.RefreshTokenTTL)
	}
	return now.AddDate(0, 6, 0)
}

// RevokeConnection is the admin disconnecting the app: every refresh and
// access token of that client and company dies.
func (s *Server) RevokeConnection(clientID, companyUUID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeLocked(clientID, companyUUID)
}

func (s *Server) revokeLocked(clientID, companyUUID string) {
	conn := s.conns[connKey{clientID: clientID, company: companyUUID}]
	if conn == nil {
		return
	}
	for _, t := range conn.refresh {
		t.revoked = true
	}
	for _, t := range conn.access {
		t.revoked = true
	}
}

// CurrentRefreshToken returns the newest live refresh token of the
// connection, "" if none.
func (s *Server) CurrentRefreshToken(clientID, companyUUID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Clock.Now()
	conn := s.conns[connKey{clientID: clientID, company: companyUUID}]
	if conn == nil {
		return ""
	}
	// Issue order: the last live one is the newest.
	for i := len(conn.refresh) - 1; i >= 0; i-- {
		if t := conn.refresh[i]; t.live(now) {
			return t.value
		}
	}
	return ""
}

// RefreshTokenValid reports whether token is a live refresh token right now.
func (s *Server) RefreshTokenValid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.refreshTokens[token]
	return t != nil && t.live(s.Clock.Now())
}

// RefreshTokenExpiry returns when token expires (zero if unknown).
func (s *Server) RefreshTokenExpiry(token string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.refreshTokens[token]; t != nil {
		return t.expires
	}
	return time.Time{}
}

// SetRotation changes the rotation mode for later refresh grants.
func (s *Server) SetRotation(r Rotation) {
	if !r.valid() {
		panic(fmt.Sprintf("concurtest: unknown rotation %q", r))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotation = r
}

// CurrentRotation returns the rotation mode in force.
func (s *Server) CurrentRotation() Rotation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotation
}

// Users returns the simulated Identity users of a company, in list order.
func (s *Server) Users(companyUUID string) []User {
	s.mu.Lock()
	us := s.usersLocked(companyUUID)
	s.mu.Unlock()
	out := make([]User, len(us))
	for i, u := range us {
		out[i] = u.User
	}
	return out
}

func (s *Server) usersLocked(companyUUID string) []*simUser {
	us, ok := s.users[companyUUID]
	if !ok {
		n := s.opts.Users
		if c := s.companies[companyUUID]; c != nil && c.users != 0 {
			n = c.users
		}
		us = generateUsers(companyUUID, n)
		s.users[companyUUID] = us
	}
	return us
}
