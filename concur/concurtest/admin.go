package concurtest

import (
	"encoding/json"
	"net/http"
	"time"
)

// adminSeed is the client and company the /_sim/ endpoints act on.
type adminSeed struct{ clientID, companyUUID string }

// EnableAdmin serves the /_sim/ control endpoints on every data centre,
// acting on the given client and company (cmd/concur-sim turns this on).
// They reveal tokens by design, so they are off unless asked for:
//
//	GET  /_sim/users                 [{"id","userName","employeeNumber","externalId"}]
//	POST /_sim/request-token         {"request_token": "..."}
//	POST /_sim/refresh-token         {"refresh_token": "..."}
//	GET  /_sim/current-refresh-token {"refresh_token": "..."} ("" when none)
//	POST /_sim/fault                 {"endpoint","count","kind","status","retry_after","delay_ms","size"}
//	POST /_sim/clear-faults
//	POST /_sim/revoke
//	POST /_sim/rotation              {"rotation": "stable|rotate|grace"}
//	POST /_sim/clock/advance         {"seconds": N}
//	GET  /_sim/stats                 {"calls":{...},"grants":{...},"errors":{"108":N}}
//	POST /_sim/reset-counters
func (s *Server) EnableAdmin(clientID, companyUUID string) {
	s.admin.Store(&adminSeed{clientID: clientID, companyUUID: companyUUID})
}

type faultRequest struct {
	Endpoint   string `json:"endpoint"`
	Count      int    `json:"count"`
	Kind       string `json:"kind"`
	Status     int    `json:"status"`
	RetryAfter string `json:"retry_after"`
	DelayMS    int64  `json:"delay_ms"`
	Size       int    `json:"size"`
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	seed := s.admin.Load()
	method := func(m string) bool {
		if r.Method != m {
			w.Header().Set("Allow", m)
			adminError(w, http.StatusMethodNotAllowed, "use "+m)
			return false
		}
		return true
	}
	decode := func(v any) bool {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(v); err != nil {
			adminError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
			return false
		}
		return true
	}
	ok := map[string]bool{"ok": true}
	switch r.URL.Path {
	case "/_sim/users":
		if method(http.MethodGet) {
			writeJSON(w, http.StatusOK, s.Users(seed.companyUUID))
		}
	case "/_sim/request-token":
		if method(http.MethodPost) {
			writeJSON(w, http.StatusOK, map[string]string{"request_token": s.NewRequestToken(seed.clientID, seed.companyUUID)})
		}
	case "/_sim/refresh-token":
		if method(http.MethodPost) {
			writeJSON(w, http.StatusOK, map[string]string{"refresh_token": s.NewRefreshToken(seed.clientID, seed.companyUUID)})
		}
	case "/_sim/current-refresh-token":
		if method(http.MethodGet) {
			writeJSON(w, http.StatusOK, map[string]string{"refresh_token": s.CurrentRefreshToken(seed.clientID, seed.companyUUID)})
		}
	case "/_sim/fault":
		var fr faultRequest
		if !method(http.MethodPost) || !decode(&fr) {
			return
		}
		ep := Endpoint(fr.Endpoint)
		if ep != EndpointToken && ep != EndpointUsers && ep != EndpointConnections {
			adminError(w, http.StatusBadRequest, "unknown endpoint (token, users, connections)")
			return
		}
		kind := FaultKind(fr.Kind)
		if !kind.valid() {
			adminError(w, http.StatusBadRequest, "unknown kind (status, delay, malformed, oversized, drop, drop-after)")
			return
		}
		if fr.Count <= 0 {
			fr.Count = 1
		}
		s.InjectFault(ep, fr.Count, Fault{Kind: kind, Status: fr.Status, RetryAfter: fr.RetryAfter,
			Delay: time.Duration(fr.DelayMS) * time.Millisecond, Size: fr.Size})
		writeJSON(w, http.StatusOK, ok)
	case "/_sim/clear-faults":
		if method(http.MethodPost) {
			s.ClearFaults()
			writeJSON(w, http.StatusOK, ok)
		}
	case "/_sim/revoke":
		if method(http.MethodPost) {
			s.RevokeConnection(seed.clientID, seed.companyUUID)
			writeJSON(w, http.StatusOK, ok)
		}
	case "/_sim/rotation":
		var body struct {
			Rotation Rotation `json:"rotation"`
		}
		if !method(http.MethodPost) || !decode(&body) {
			return
		}
		if !body.Rotation.valid() {
			adminError(w, http.StatusBadRequest, "rotation must be stable, rotate or grace")
			return
		}
		s.SetRotation(body.Rotation)
		writeJSON(w, http.StatusOK, ok)
	case "/_sim/clock/advance":
		var body struct {
			Seconds float64 `json:"seconds"`
		}
		if !method(http.MethodPost) || !decode(&body) {
			return
		}
		s.Clock.Advance(time.Duration(body.Seconds * float64(time.Second)))
		writeJSON(w, http.StatusOK, map[string]any{"now": s.Clock.Now().UTC().Format(time.RFC3339Nano)})
	case "/_sim/stats":
		if method(http.MethodGet) {
			writeJSON(w, http.StatusOK, s.Stats())
		}
	case "/_sim/reset-counters":
		if method(http.MethodPost) {
			s.ResetCounters()
			writeJSON(w, http.StatusOK, ok)
		}
	default:
		adminError(w, http.StatusNotFound, "no such admin endpoint")
	}
}
