package concurtest

import (
	"strconv"
	"sync"
)

// counters records what clients did, for assertions. Requests are counted
// as they arrive, before faults, so a retried call shows up once per attempt.
type counters struct {
	mu          sync.Mutex
	calls       map[Endpoint]int
	grants      map[string]int
	refreshUses map[string]int
	errors      map[int]int
	// deadRefreshUses counts refresh grants that presented a refresh token
	// the simulator had issued but that was dead (revoked, rotated away,
	// expired): each one is a custody failure of the client.
	deadRefreshUses int
}

func (c *counters) init() {
	c.calls = map[Endpoint]int{}
	c.grants = map[string]int{}
	c.refreshUses = map[string]int{}
	c.errors = map[int]int{}
	c.deadRefreshUses = 0
}

func (c *counters) call(ep Endpoint, grant, refresh string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[ep]++
	if grant != "" {
		c.grants[grant]++
	}
	if refresh != "" {
		c.refreshUses[refresh]++
	}
}

func (c *counters) errorCode(code int) {
	if code == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errors[code]++
}

func (c *counters) deadRefresh() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadRefreshUses++
}

// DeadRefreshTokenUses returns how many refresh grants presented a refresh
// token that was dead at the time (revoked, rotated away, past its grace
// window or expired), faulted requests included. A client that keeps custody
// of its refresh token never does this.
func (s *Server) DeadRefreshTokenUses() int {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return s.counters.deadRefreshUses
}

// Calls returns how many requests reached ep (faulted ones included).
func (s *Server) Calls(ep Endpoint) int {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return s.counters.calls[ep]
}

// GrantCalls returns how many token requests carried grant_type
// ("password", "refresh_token"), faulted or failed ones included.
func (s *Server) GrantCalls(grantType string) int {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return s.counters.grants[grantType]
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
	return s.counters.errors[code]
}

// ResetCounters zeroes every counter.
func (s *Server) ResetCounters() {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	s.counters.init()
}

// Stats is a snapshot of the counters (the JSON of GET /_sim/stats).
type Stats struct {
	Calls  map[string]int `json:"calls"`
	Grants map[string]int `json:"grants"`
	Errors map[string]int `json:"errors"`
	// DeadRefreshTokenPresented is DeadRefreshTokenUses.
	DeadRefreshTokenPresented int `json:"dead_refresh_token_presented"`
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	st := Stats{Calls: map[string]int{}, Grants: map[string]int{}, Errors: map[string]int{},
		DeadRefreshTokenPresented: s.counters.deadRefreshUses}
	for k, v := range s.counters.calls {
		st.Calls[string(k)] = v
	}
	for k, v := range s.counters.grants {
		st.Grants[k] = v
	}
	for k, v := range s.counters.errors {
		st.Errors[strconv.Itoa(k)] = v
	}
	return st
}
