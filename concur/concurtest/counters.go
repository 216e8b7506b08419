package concurtest

import (
	"strconv"
	"sync"
)

// counters records what clients did, for assertions. Requests are counted
// as they arrive, before faults, so a retried call shows up once per attempt.
type counters struct {
	mu  sync.Mutex
	all tally
	// refreshUses counts presentations per refresh token value.
	refreshUses map[string]int
	// companies holds a tally per company UUID that token requests could be
	// attributed to (see Server.grantCompany); only companies with traffic
	// have one.
	companies map[string]*tally
}

// tally is one set of counts: the whole server's or one company's.
type tally struct {
	calls  map[Endpoint]int
	grants map[string]int
	errors map[int]int
	// refreshUses counts refresh grants that presented a refresh token.
	refreshUses int
	// deadRefreshUses counts refresh grants that presented a refresh token
	// the simulator had issued but that was dead (revoked, rotated away,
	// expired): each one is a custody failure of the client.
	deadRefreshUses int
}

func newTally() *tally {
	return &tally{calls: map[Endpoint]int{}, grants: map[string]int{}, errors: map[int]int{}}
}

func (c *counters) init() {
	c.all = *newTally()
	c.refreshUses = map[string]int{}
	c.companies = map[string]*tally{}
}

// tallies returns the server's tally and, when company is not "", the
// company's (created on first use). Call with mu held.
func (c *counters) tallies(company string) []*tally {
	if company == "" {
		return []*tally{&c.all}
	}
	t := c.companies[company]
	if t == nil {
		t = newTally()
		c.companies[company] = t
	}
	return []*tally{&c.all, t}
}

// call counts a request to ep; company is who it is about ("" if unknown).
func (c *counters) call(ep Endpoint, grant, refresh, company string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if refresh != "" {
		c.refreshUses[refresh]++
	}
	for _, t := range c.tallies(company) {
		t.calls[ep]++
		if grant != "" {
			t.grants[grant]++
		}
		if refresh != "" {
			t.refreshUses++
		}
	}
}

func (c *counters) errorCode(code int, company string) {
	if code == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tallies(company) {
		t.errors[code]++
	}
}

func (c *counters) deadRefresh(company string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tallies(company) {
		t.deadRefreshUses++
	}
}

// DeadRefreshTokenUses returns how many refresh grants presented a refresh
// token that was dead at the time (revoked, rotated away, past its grace
// window or expired), faulted requests included. A client that keeps custody
// of its refresh token never does this.
func (s *Server) DeadRefreshTokenUses() int {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return s.counters.all.deadRefreshUses
}

// Calls returns how many requests reached ep (faulted ones included).
func (s *Server) Calls(ep Endpoint) int {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return s.counters.all.calls[ep]
}

// GrantCalls returns how many token requests carried grant_type
// ("password", "refresh_token"), faulted or failed ones included.
func (s *Server) GrantCalls(grantType string) int {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return s.counters.all.grants[grantType]
}

// RefreshTokenUses returns how many refresh grants presented token,
// faulted or failed ones included.
func (s *Server) RefreshTokenUses(token string) int {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return s.counters.refreshUses[token]
}

// ErrorCount returns how many answers carried Concur error code N.
func (s *Server) ErrorCount(code int) int {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return s.counters.all.errors[code]
}

// ResetCounters zeroes every counter.
func (s *Server) ResetCounters() {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	s.counters.init()
}

// Stats is a snapshot of the counters (the JSON of GET /_sim/stats), of the
// whole server or of one company (CompanyStats).
type Stats struct {
	Calls  map[string]int `json:"calls"`
	Grants map[string]int `json:"grants"`
	Errors map[string]int `json:"errors"`
	// RefreshTokenUses counts refresh grants that presented a refresh token.
	RefreshTokenUses int `json:"refresh_token_uses"`
	// DeadRefreshTokenPresented is DeadRefreshTokenUses.
	DeadRefreshTokenPresented int `json:"dead_refresh_token_presented"`
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return s.counters.all.stats()
}

// CompanyStats returns a copy of one company's counters: token requests
// (Calls["token"]) and grants whose company UUID (password grant) or refresh
// token (refresh grant) names the company, their Concur error codes, and
// the company's dead refresh tokens presented. Requests naming no known
// company or token count only in Stats. Identity calls are not attributed.
func (s *Server) CompanyStats(companyUUID string) Stats {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	if t := s.counters.companies[companyUUID]; t != nil {
		return t.stats()
	}
	return newTally().stats()
}

func (t *tally) stats() Stats {
	st := Stats{Calls: map[string]int{}, Grants: map[string]int{}, Errors: map[string]int{},
		RefreshTokenUses: t.refreshUses, DeadRefreshTokenPresented: t.deadRefreshUses}
	for k, v := range t.calls {
		st.Calls[string(k)] = v
	}
	for k, v := range t.grants {
		st.Grants[k] = v
	}
	for k, v := range t.errors {
		st.Errors[strconv.Itoa(k)] = v
	}
	return st
}
