package concurtest

import (
	"net/http"
	"sync"
)

// knobs are per-server switches that change answers without changing
// token state: deprecation headers per endpoint and id_token subjects.
type knobs struct {
	mu          sync.Mutex
	deprecation map[Endpoint]deprecation
	subjects    map[string]string // company UUID -> sub named in its id_tokens
}

type deprecation struct{ warning, sunset string }

// SetDeprecation makes every answer of ep carry Concur's deprecation headers
// (x-api-warn: warning, sunset: sunset; an empty value sends no header).
// Both empty switches it off.
func (s *Server) SetDeprecation(ep Endpoint, warning, sunset string) {
	s.knobs.mu.Lock()
	defer s.knobs.mu.Unlock()
	if s.knobs.deprecation == nil {
		s.knobs.deprecation = map[Endpoint]deprecation{}
	}
	if warning == "" && sunset == "" {
		delete(s.knobs.deprecation, ep)
		return
	}
	s.knobs.deprecation[ep] = deprecation{warning: warning, sunset: sunset}
}

func (s *Server) setDeprecationHeaders(w http.ResponseWriter, ep Endpoint) {
	s.knobs.mu.Lock()
	d, ok := s.knobs.deprecation[ep]
	s.knobs.mu.Unlock()
	if !ok {
		return
	}
	if d.warning != "" {
		w.Header().Set("X-Api-Warn", d.warning)
	}
	if d.sunset != "" {
		w.Header().Set("Sunset", d.sunset)
	}
}

// SetIDTokenSubject makes the token answers for a company (password and
// refresh grants) carry an id_token whose sub is sub instead of the
// company's UUID, as if Concur named another company. "" restores the truth.
func (s *Server) SetIDTokenSubject(companyUUID, sub string) {
	s.knobs.mu.Lock()
	defer s.knobs.mu.Unlock()
	if s.knobs.subjects == nil {
		s.knobs.subjects = map[string]string{}
	}
	if sub == "" {
		delete(s.knobs.subjects, companyUUID)
		return
	}
	s.knobs.subjects[companyUUID] = sub
}

func (s *Server) idTokenSubject(companyUUID string) string {
	s.knobs.mu.Lock()
	defer s.knobs.mu.Unlock()
	if sub, ok := s.knobs.subjects[companyUUID]; ok {
		return sub
	}
	return companyUUID
}

// noteUnprocessedRefresh counts a dead refresh token presented in a request
// that a fault answered without processing; processed requests are counted
// by the grant itself, atomically with the state it reads.
func (s *Server) noteUnprocessedRefresh(r *http.Request, c *call) {
	presented := peekGrant(r, c.body).refresh
	if presented == "" {
		return
	}
	s.mu.Lock()
	t := s.refreshTokens[presented]
	dead := t != nil && !t.live(s.Clock.Now())
	s.mu.Unlock()
	if dead {
		s.counters.deadRefresh(t.company)
	}
}
