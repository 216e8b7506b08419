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
//	POST /_sim/fault                 {"endpoint","count","kind","status","retry_after","delay_ms","size",
//	                                  "fields","truncate_at","code","geolocation"}
//	POST /_sim/clear-faults
//	POST /_sim/revoke
//	POST /_sim/rotation              {"rotation": "stable|rotate|grace"}
//	POST /_sim/clock/advance         {"seconds": N}
//	GET  /_sim/stats                 {"calls":{...},"grants":{...},"errors":{"108":N},"dead_refresh_token_presented":N}
//	POST /_sim/reset-counters
//	POST /_sim/id-token-subject      {"sub": "..."} ("" -> the company's own UUID again)
//	POST /_sim/deprecation           {"endpoint","warning","sunset"} (both "" -> off)
//
// Fault kinds (see the Fault* constants): status, delay, malformed,
// oversized, drop, drop-after; and, processing the request for real first:
// hold (answer after delay_ms), wrong-types (2xx answer with "fields" of the
// wrong JSON type; default scope, token_type, geolocation, expires_in),
// truncate (answer cut after "truncate_at" bytes; 0 -> half). oauth-error
// answers Concur's OAuth2 error "code" (any code of the reference table) in
// Concur's exact shape, with "status" (default 400; 403 for 53) and, for 16
// and 108, "geolocation" (default this data centre).
func (s *Server) EnableAdmin(clientID, companyUUID string) {
	s.admin.Store(&adminSeed{clientID: clientID, companyUUID: companyUUID})
}

type faultRequest struct {
	Endpoint    string   `json:"endpoint"`
	Count       int      `json:"count"`
	Kind        string   `json:"kind"`
	Status      int      `json:"status"`
	RetryAfter  string   `json:"retry_after"`
	DelayMS     int64    `json:"delay_ms"`
	Size        int      `json:"size"`
	Fields      []string `json:"fields"`
	TruncateAt  int      `json:"truncate_at"`
	Code        int      `json:"code"`
	Geolocation string   `json:"geolocation"`
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// adminCall is one request to an admin endpoint.
type adminCall struct {
	w    http.ResponseWriter
	r    *http.Request
	seed *adminSeed
}

func (a adminCall) decode(v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(a.w, a.r.Body, 1<<16)).Decode(v); err != nil {
		adminError(a.w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

func (a adminCall) reply(v any) { writeJSON(a.w, http.StatusOK, v) }
func (a adminCall) ok()         { a.reply(map[string]bool{"ok": true}) }

type adminRoute struct {
	method string
	serve  func(adminCall)
}

func (s *Server) adminRoutes() map[string]adminRoute {
	get := func(f func(adminCall)) adminRoute { return adminRoute{http.MethodGet, f} }
	post := func(f func(adminCall)) adminRoute { return adminRoute{http.MethodPost, f} }
	return map[string]adminRoute{
		"/_sim/users": get(func(a adminCall) { a.reply(s.Users(a.seed.companyUUID)) }),
		"/_sim/request-token": post(func(a adminCall) {
			a.reply(map[string]string{"request_token": s.NewRequestToken(a.seed.clientID, a.seed.companyUUID)})
		}),
		"/_sim/refresh-token": post(func(a adminCall) {
			a.reply(map[string]string{"refresh_token": s.NewRefreshToken(a.seed.clientID, a.seed.companyUUID)})
		}),
		"/_sim/current-refresh-token": get(func(a adminCall) {
			a.reply(map[string]string{"refresh_token": s.CurrentRefreshToken(a.seed.clientID, a.seed.companyUUID)})
		}),
		"/_sim/fault":          post(s.adminFault),
		"/_sim/clear-faults":   post(func(a adminCall) { s.ClearFaults(); a.ok() }),
		"/_sim/revoke":         post(func(a adminCall) { s.RevokeConnection(a.seed.clientID, a.seed.companyUUID); a.ok() }),
		"/_sim/rotation":       post(s.adminRotation),
		"/_sim/clock/advance":  post(s.adminClockAdvance),
		"/_sim/stats":          get(func(a adminCall) { a.reply(s.Stats()) }),
		"/_sim/reset-counters": post(func(a adminCall) { s.ResetCounters(); a.ok() }),
		"/_sim/id-token-subject": post(func(a adminCall) {
			var body struct {
				Sub string `json:"sub"`
			}
			if a.decode(&body) {
				s.SetIDTokenSubject(a.seed.companyUUID, body.Sub)
				a.ok()
			}
		}),
		"/_sim/deprecation": post(s.adminDeprecation),
	}
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	route, found := s.adminRoutes()[r.URL.Path]
	switch {
	case !found:
		adminError(w, http.StatusNotFound, "no such admin endpoint")
	case r.Method != route.method:
		w.Header().Set("Allow", route.method)
		adminError(w, http.StatusMethodNotAllowed, "use "+route.method)
	default:
		route.serve(adminCall{w: w, r: r, seed: s.admin.Load()})
	}
}

const endpointNames = "token, users, connections, jwks"

func (s *Server) adminFault(a adminCall) {
	var fr faultRequest
	if !a.decode(&fr) {
		return
	}
	ep := Endpoint(fr.Endpoint)
	if !ep.valid() {
		adminError(a.w, http.StatusBadRequest, "unknown endpoint ("+endpointNames+")")
		return
	}
	f := Fault{Kind: FaultKind(fr.Kind), Status: fr.Status, RetryAfter: fr.RetryAfter,
		Delay: time.Duration(fr.DelayMS) * time.Millisecond, Size: fr.Size,
		Fields: fr.Fields, TruncateAt: fr.TruncateAt, Code: fr.Code, Geolocation: fr.Geolocation}
	if err := f.check(); err != nil {
		adminError(a.w, http.StatusBadRequest, err.Error()+" (kinds: status, delay, malformed, oversized, drop, drop-after, "+
			"hold, wrong-types, truncate, oauth-error)")
		return
	}
	s.InjectFault(ep, max(fr.Count, 1), f)
	a.ok()
}

func (s *Server) adminRotation(a adminCall) {
	var body struct {
		Rotation Rotation `json:"rotation"`
	}
	if !a.decode(&body) {
		return
	}
	if !body.Rotation.valid() {
		adminError(a.w, http.StatusBadRequest, "rotation must be stable, rotate or grace")
		return
	}
	s.SetRotation(body.Rotation)
	a.ok()
}

func (s *Server) adminClockAdvance(a adminCall) {
	var body struct {
		Seconds float64 `json:"seconds"`
	}
	if a.decode(&body) {
		s.Clock.Advance(time.Duration(body.Seconds * float64(time.Second)))
		a.reply(map[string]any{"now": s.Clock.Now().UTC().Format(time.RFC3339Nano)})
	}
}

func (s *Server) adminDeprecation(a adminCall) {
	var body struct {
		Endpoint string `json:"endpoint"`
		Warning  string `json:"warning"`
		Sunset   string `json:"sunset"`
	}
	if !a.decode(&body) {
		return
	}
	ep := Endpoint(body.Endpoint)
	if !ep.valid() {
		adminError(a.w, http.StatusBadRequest, "unknown endpoint ("+endpointNames+")")
		return
	}
	s.SetDeprecation(ep, body.Warning, body.Sunset)
	a.ok()
}
