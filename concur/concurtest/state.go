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
	// disabledFor holds client ids the company has not (or no longer)
	// enabled: code 53. Companies are enabled for every client by default.
	disabledFor map[string]bool
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
	s.companies[companyUUID] = &company{uuid: companyUUID, dc: dataCenter, disabledFor: map[string]bool{}}
}

// SetCompanyEnabled says whether a company has enabled a client; a grant for
// a company that has not gets code 53.
func (s *Server) SetCompanyEnabled(clientID, companyUUID string, enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.companyLocked(companyUUID)
	if enabled {
		delete(c.disabledFor, clientID)
	} else {
		c.disabledFor[clientID] = true
	}
}

// companyLocked returns the company, registering an unknown one at the first
// data centre so that seeding helpers work without an AddCompany call.
func (s *Server) companyLocked(companyUUID string) *company {
	c := s.companies[companyUUID]
	if c == nil {
		c = &company{uuid: companyUUID, dc: s.homeDataCenter().name, disabledFor: map[string]bool{}}
		s.companies[companyUUID] = c
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
	s.seq++
	t := &refreshToken{value: value, clientID: clientID, company: companyUUID,
		expires: s.refreshExpiry(now), seq: s.seq}
	s.refreshTokens[value] = t
	return t
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
	for _, t := range s.refreshTokens {
		if t.clientID == clientID && t.company == companyUUID {
			t.revoked = true
		}
	}
	for _, t := range s.accessTokens {
		if t.clientID == clientID && t.company == companyUUID {
			t.revoked = true
		}
	}
}

// CurrentRefreshToken returns the newest live refresh token of the
// connection, "" if none.
func (s *Server) CurrentRefreshToken(clientID, companyUUID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Clock.Now()
	var best *refreshToken
	for _, t := range s.refreshTokens {
		if t.clientID == clientID && t.company == companyUUID && t.live(now) && (best == nil || t.seq > best.seq) {
			best = t
		}
	}
	if best == nil {
		return ""
	}
	return best.value
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
		us = generateUsers(companyUUID, s.opts.Users)
		s.users[companyUUID] = us
	}
	return us
}
