package concurtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// adminSeed is the client and company the /_sim/ endpoints act on.
type adminSeed struct{ clientID, companyUUID string }

// EnableAdmin serves the /_sim/ control endpoints on every data centre,
// acting on the given client and company (cmd/concur-sim turns this on).
// They reveal tokens by design, so they are off unless asked for. The
// endpoints marked * act on another company of the client when given its
// company_uuid (query parameter, or in the JSON body of a POST):
//
//	GET  /_sim/users*                [{"id","userName","employeeNumber","externalId"}]
//	POST /_sim/request-token*        {"request_token": "..."}
//	POST /_sim/refresh-token*        {"refresh_token": "..."}
//	GET  /_sim/current-refresh-token* {"refresh_token": "..."} ("" when none)
//	POST /_sim/companies             {"data_center","users"} (both optional) -> {"company_uuid","request_token","data_center"}:
//	                                  a new company of the client (data centres in turn; 3 users)
//	GET  /_sim/companies             [{"company_uuid","data_center"}]
//	POST /_sim/fault                 {"endpoint","count","kind","status","retry_after","delay_ms","size",
//	                                  "fields","truncate_at","code","geolocation"}
//	POST /_sim/clear-faults
//	POST /_sim/revoke*
//	POST /_sim/rotation              {"rotation": "stable|rotate|grace"}
//	POST /_sim/clock/advance         {"seconds": N}
//	GET  /_sim/stats*                {"calls":{...},"grants":{...},"errors":{"108":N},"refresh_token_uses":N,
//	                                  "dead_refresh_token_presented":N}; the server's, or one company's (CompanyStats)
//	POST /_sim/reset-counters
//	POST /_sim/id-token-subject*     {"sub": "..."} ("" -> the company's own UUID again)
//	POST /_sim/deprecation           {"endpoint","warning","sunset"} (both "" -> off)
//	POST /_sim/strict-paths          {"strict": true|false}: the references' literal paths, or the front door's reading
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

// decodeOptional is decode for endpoints whose body may be left out.
func (a adminCall) decodeOptional(v any) bool {
	err := json.NewDecoder(http.MaxBytesReader(a.w, a.r.Body, 1<<16)).Decode(v)
	if err != nil && !errors.Is(err, io.EOF) {
		adminError(a.w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

func (a adminCall) reply(v any) { writeJSON(a.w, http.StatusOK, v) }
func (a adminCall) ok()         { a.reply(map[string]bool{"ok": true}) }

// adminRoutes maps path, then method, to the handler.
func (s *Server) adminRoutes() map[string]map[string]func(adminCall) {
	get := func(f func(adminCall)) map[string]func(adminCall) {
		return map[string]func(adminCall){http.MethodGet: f}
	}
	post := func(f func(adminCall)) map[string]func(adminCall) {
		return map[string]func(adminCall){http.MethodPost: f}
	}
	// onCompany serves f for the company the call names (see adminCompany).
	onCompany := func(f func(a adminCall, companyUUID string)) func(adminCall) {
		return func(a adminCall) {
			if id, ok := s.adminCompany(a); ok {
				f(a, id)
			}
		}
	}
	return map[string]map[string]func(adminCall){
		"/_sim/users": get(onCompany(func(a adminCall, id string) { a.reply(s.Users(id)) })),
		"/_sim/request-token": post(onCompany(func(a adminCall, id string) {
			a.reply(map[string]string{"request_token": s.NewRequestToken(a.seed.clientID, id)})
		})),
		"/_sim/refresh-token": post(onCompany(func(a adminCall, id string) {
			a.reply(map[string]string{"refresh_token": s.NewRefreshToken(a.seed.clientID, id)})
		})),
		"/_sim/current-refresh-token": get(onCompany(func(a adminCall, id string) {
			a.reply(map[string]string{"refresh_token": s.CurrentRefreshToken(a.seed.clientID, id)})
		})),
		"/_sim/companies":      {http.MethodGet: func(a adminCall) { a.reply(s.Companies()) }, http.MethodPost: s.adminNewCompany},
		"/_sim/fault":          post(s.adminFault),
		"/_sim/clear-faults":   post(func(a adminCall) { s.ClearFaults(); a.ok() }),
		"/_sim/revoke":         post(onCompany(func(a adminCall, id string) { s.RevokeConnection(a.seed.clientID, id); a.ok() })),
		"/_sim/rotation":       post(s.adminRotation),
		"/_sim/clock/advance":  post(s.adminClockAdvance),
		"/_sim/stats":          get(s.adminStats),
		"/_sim/reset-counters": post(func(a adminCall) { s.ResetCounters(); a.ok() }),
		"/_sim/id-token-subject": post(func(a adminCall) {
			var body struct {
				Sub         string `json:"sub"`
				CompanyUUID string `json:"company_uuid"`
			}
			if !a.decode(&body) {
				return
			}
			if id, ok := s.adminTarget(a, body.CompanyUUID); ok {
				s.SetIDTokenSubject(id, body.Sub)
				a.ok()
			}
		}),
		"/_sim/deprecation": post(s.adminDeprecation),
		"/_sim/strict-paths": post(func(a adminCall) {
			var body struct {
				Strict bool `json:"strict"`
			}
			if a.decode(&body) {
				s.SetStrictPaths(body.Strict)
				a.ok()
			}
		}),
	}
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	methods, found := s.adminRoutes()[r.URL.Path]
	if !found {
		adminError(w, http.StatusNotFound, "no such admin endpoint")
		return
	}
	serve, allowed := methods[r.Method]
	if !allowed {
		names := make([]string, 0, len(methods))
		for m := range methods {
			names = append(names, m)
		}
		sort.Strings(names)
		w.Header().Set("Allow", strings.Join(names, ", "))
		adminError(w, http.StatusMethodNotAllowed, "use "+strings.Join(names, " or "))
		return
	}
	serve(adminCall{w: w, r: r, seed: s.admin.Load()})
}

// adminCompany is the company an admin call acts on: company_uuid from the
// optional JSON body or from the query, else the seeded company.
func (s *Server) adminCompany(a adminCall) (string, bool) {
	var body struct {
		CompanyUUID string `json:"company_uuid"`
	}
	if !a.decodeOptional(&body) {
		return "", false
	}
	return s.adminTarget(a, body.CompanyUUID)
}

// adminTarget is fromBody, else company_uuid from the query, else the
// seeded company. A company the simulator does not know is a 400.
func (s *Server) adminTarget(a adminCall, fromBody string) (string, bool) {
	id := fromBody
	if id == "" {
		id = a.r.URL.Query().Get("company_uuid")
	}
	if id == "" {
		return a.seed.companyUUID, true
	}
	if s.DataCenterOf(id) == "" {
		adminError(a.w, http.StatusBadRequest,
			fmt.Sprintf("company_uuid %.64q is not a company of this simulator (GET /_sim/companies lists them)", id))
		return "", false
	}
	return id, true
}

// maxAdminUsers bounds the users a company created over HTTP may ask for
// (they are generated in memory on first use).
const maxAdminUsers = 10000

// adminNewCompany creates a company of the seeded client and hands out its
// first request token, as App Center would to the partner's connect page.
func (s *Server) adminNewCompany(a adminCall) {
	var body struct {
		DataCenter string `json:"data_center"`
		Users      int    `json:"users"`
	}
	if !a.decodeOptional(&body) {
		return
	}
	if body.Users > maxAdminUsers {
		adminError(a.w, http.StatusBadRequest, fmt.Sprintf("users must be at most %d", maxAdminUsers))
		return
	}
	c, err := s.CreateCompany(CompanySpec{DataCenter: body.DataCenter, Users: body.Users})
	if err != nil {
		adminError(a.w, http.StatusBadRequest, err.Error())
		return
	}
	a.reply(map[string]string{"company_uuid": c.UUID, "data_center": c.DataCenter,
		"request_token": s.NewRequestToken(a.seed.clientID, c.UUID)})
}

// adminStats answers the whole server's counters, or one company's with
// ?company_uuid=.
func (s *Server) adminStats(a adminCall) {
	if a.r.URL.Query().Get("company_uuid") == "" {
		a.reply(s.Stats())
		return
	}
	if id, ok := s.adminTarget(a, ""); ok {
		a.reply(s.CompanyStats(id))
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
