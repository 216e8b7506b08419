package concurtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func adminDo(t *testing.T, s *Server, method, path string, body any) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, s.URL+path, nil)
	if body != nil {
		req, _ = http.NewRequestWithContext(context.Background(), method, s.URL+path, jsonBody(body))
		req.Header.Set("Content-Type", "application/json")
	}
	return do(t, s.Client(), req)
}

// onboard is the partner's side of App Center's connect: it exchanges the
// company's request token at the landing zone and returns the token answer.
func onboard(t *testing.T, s *Server, company, requestToken string) reply {
	t.Helper()
	r := postForm(t, s, s.URLOf(LandingZone), passwordForm(company, requestToken))
	if r.status != http.StatusOK {
		t.Fatalf("request-token exchange for %s: %d %s", company, r.status, r.raw)
	}
	return r
}

func TestCompaniesThroughAdmin(t *testing.T) {
	s := newSim(t, Options{DataCenters: []string{LandingZone, "us2", "eu2"}, Rotation: RotationRotate})
	s.EnableAdmin(testClient, testCompany)

	created := map[string]map[string]any{}
	for _, body := range []any{nil, map[string]any{}, map[string]any{"data_center": "eu2", "users": 5}} {
		r := adminDo(t, s, http.MethodPost, "/_sim/companies", body)
		id, _ := r.body["company_uuid"].(string)
		if r.status != 200 || id == "" || !strings.HasPrefix(fmt.Sprint(r.body["request_token"]), "at-") {
			t.Fatalf("POST /_sim/companies %v: %d %s", body, r.status, r.raw)
		}
		created[id] = r.body
	}
	var list []Company
	if err := json.Unmarshal(adminDo(t, s, http.MethodGet, "/_sim/companies", nil).raw, &list); err != nil || len(list) != 4 {
		t.Fatalf("GET /_sim/companies: %v %v", list, err)
	}
	if list[0] != (Company{UUID: testCompany, DataCenter: "us2"}) {
		t.Errorf("the seeded company is not listed first: %v", list)
	}
	// No data centre asked: us2, then eu2 (never the landing zone).
	for i, want := range []string{"us2", "eu2", "eu2"} {
		if got := list[i+1]; got.DataCenter != want || created[got.UUID]["data_center"] != want {
			t.Errorf("company %d lives in %s (answered %v), want %s", i, got.DataCenter, created[got.UUID]["data_center"], want)
		}
	}
	if n := len(s.Users(list[1].UUID)); n != DefaultCompanyUsers {
		t.Errorf("a new company has %d users, want %d", n, DefaultCompanyUsers)
	}
	if n := len(s.Users(list[3].UUID)); n != 5 {
		t.Errorf("a company asked with 5 users has %d", n)
	}
	for dc, want := range map[string]string{"ap9": `"ap9"`, LandingZone: "landing zone"} {
		r := adminDo(t, s, http.MethodPost, "/_sim/companies", map[string]any{"data_center": dc})
		if msg, _ := r.body["error"].(string); r.status != 400 || !strings.Contains(msg, want) || !strings.Contains(msg, "data_center") {
			t.Errorf("data centre %s: %d %s", dc, r.status, r.raw)
		}
	}
	if r := adminDo(t, s, http.MethodPost, "/_sim/companies", map[string]any{"users": maxAdminUsers + 1}); r.status != 400 ||
		!strings.Contains(r.body["error"].(string), "users") {
		t.Errorf("too many users: %d %s", r.status, r.raw)
	}
	if r := adminDo(t, s, http.MethodPut, "/_sim/companies", nil); r.status != 405 || r.header.Get("Allow") != "GET, POST" {
		t.Errorf("PUT /_sim/companies: %d Allow=%q", r.status, r.header.Get("Allow"))
	}
	if len(s.Companies()) != 4 {
		t.Errorf("a refused POST created a company: %v", s.Companies())
	}
	onboardTwoCompanies(t, s, list[1].UUID, created[list[1].UUID]["request_token"].(string),
		list[2].UUID, created[list[2].UUID]["request_token"].(string))
}

// onboardTwoCompanies connects us (in us2) and eu (in eu2) as a partner's
// onboarding service would and checks every counter lands on its company.
func onboardTwoCompanies(t *testing.T, s *Server, us, usRequestToken, eu, euRequestToken string) {
	t.Helper()
	// The wrong data centre answers 16 naming the company's own.
	if r := postForm(t, s, s.URLOf("us2"), passwordForm(eu, euRequestToken)); r.code() != CodeWrongDataCenter ||
		r.body["geolocation"] != s.URLOf("eu2") {
		t.Fatalf("eu company's exchange at us2: %d %s", r.status, r.raw)
	}
	usTok := onboard(t, s, us, usRequestToken)
	euTok := onboard(t, s, eu, euRequestToken)
	if usTok.body["geolocation"] != s.URLOf("us2") || euTok.body["geolocation"] != s.URLOf("eu2") {
		t.Fatalf("geolocations: us %v, eu %v", usTok.body["geolocation"], euTok.body["geolocation"])
	}
	euRefresh := euTok.body["refresh_token"].(string)
	if r := postForm(t, s, s.URLOf("us2"), refreshForm(euRefresh)); r.code() != CodeWrongDataCenter {
		t.Fatalf("eu refresh at us2: %d %s", r.status, r.raw)
	}
	r := postForm(t, s, s.URLOf("eu2"), refreshForm(euRefresh))
	if r.status != 200 {
		t.Fatalf("eu refresh at its geolocation: %d %s", r.status, r.raw)
	}
	// Strict rotation: presenting the old one again is a custody failure of eu's.
	if r := postForm(t, s, s.URLOf("eu2"), refreshForm(euRefresh)); r.code() != CodeBadRefreshToken {
		t.Fatalf("rotated-away refresh token: %d %s", r.status, r.raw)
	}
	if r := postForm(t, s, s.URLOf("us2"), refreshForm(usTok.body["refresh_token"].(string))); r.status != 200 {
		t.Fatalf("us refresh: %d %s", r.status, r.raw)
	}

	want := map[string]Stats{
		us: {Calls: map[string]int{"token": 2}, Grants: map[string]int{"password": 1, "refresh_token": 1},
			Errors: map[string]int{}, RefreshTokenUses: 1},
		eu: {Calls: map[string]int{"token": 5}, Grants: map[string]int{"password": 2, "refresh_token": 3},
			Errors: map[string]int{"16": 2, "108": 1}, RefreshTokenUses: 3, DeadRefreshTokenPresented: 1},
		testCompany: {Calls: map[string]int{}, Grants: map[string]int{}, Errors: map[string]int{}},
	}
	for id, w := range want {
		if got := s.CompanyStats(id); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("CompanyStats(%s) = %+v, want %+v", id, got, w)
		}
		var got Stats
		r := adminDo(t, s, http.MethodGet, "/_sim/stats?company_uuid="+id, nil)
		if err := json.Unmarshal(r.raw, &got); err != nil || fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("GET /_sim/stats?company_uuid=%s = %s, want %+v", id, r.raw, w)
		}
	}
	if st := s.Stats(); st.Grants["refresh_token"] != 4 || st.DeadRefreshTokenPresented != 1 {
		t.Errorf("server stats: %+v", st)
	}
}

func TestAdminActsOnNamedCompany(t *testing.T) {
	s := newSim(t, Options{DataCenters: []string{"us2", "eu2"}})
	s.EnableAdmin(testClient, testCompany)
	eu := s.NewCompany("eu2")
	seeded := s.NewRefreshToken(testClient, testCompany)

	rt := adminDo(t, s, http.MethodPost, "/_sim/request-token", map[string]any{"company_uuid": eu}).body["request_token"].(string)
	g := postForm(t, s, s.URLOf("eu2"), passwordForm(eu, rt))
	if g.status != 200 {
		t.Fatalf("exchange of the admin request token: %d %s", g.status, g.raw)
	}
	cur := adminDo(t, s, http.MethodGet, "/_sim/current-refresh-token?company_uuid="+eu, nil).body["refresh_token"]
	if cur != g.body["refresh_token"] {
		t.Errorf("current-refresh-token?company_uuid = %v, want %v", cur, g.body["refresh_token"])
	}
	if cur := adminDo(t, s, http.MethodGet, "/_sim/current-refresh-token", nil).body["refresh_token"]; cur != seeded {
		t.Errorf("current-refresh-token of the seeded company = %v", cur)
	}
	var users []User
	if err := json.Unmarshal(adminDo(t, s, http.MethodGet, "/_sim/users?company_uuid="+eu, nil).raw, &users); err != nil ||
		len(users) != DefaultCompanyUsers || users[0] != s.Users(eu)[0] {
		t.Errorf("users?company_uuid: %v %v", users, err)
	}
	adminDo(t, s, http.MethodPost, "/_sim/id-token-subject", map[string]any{"company_uuid": eu, "sub": "other"})
	if s.idTokenSubject(eu) != "other" || s.idTokenSubject(testCompany) != testCompany {
		t.Error("id-token-subject did not act on the named company only")
	}

	adminDo(t, s, http.MethodPost, "/_sim/revoke?company_uuid="+eu, nil)
	if s.RefreshTokenValid(g.body["refresh_token"].(string)) || !s.RefreshTokenValid(seeded) {
		t.Error("revoke?company_uuid must revoke that company's connection only")
	}
	for _, path := range []string{"/_sim/stats?company_uuid=nope", "/_sim/users?company_uuid=nope"} {
		r := adminDo(t, s, http.MethodGet, path, nil)
		if msg, _ := r.body["error"].(string); r.status != 400 || !strings.Contains(msg, `company_uuid "nope"`) {
			t.Errorf("%s: %d %s", path, r.status, r.raw)
		}
	}
	if r := adminDo(t, s, http.MethodPost, "/_sim/request-token", map[string]any{"company_uuid": "nope"}); r.status != 400 {
		t.Errorf("request token for an unknown company: %d %s", r.status, r.raw)
	}
}

func TestNewCompany(t *testing.T) {
	s := newSim(t, Options{DataCenters: []string{"us2", LandingZone, "eu2"}})
	var dcs []string
	for range 4 {
		dcs = append(dcs, s.DataCenterOf(s.NewCompany("")))
	}
	if strings.Join(dcs, ",") != "us2,eu2,us2,eu2" {
		t.Errorf("round robin: %v", dcs)
	}
	none, err := s.CreateCompany(CompanySpec{DataCenter: "us2", Users: -1})
	if err != nil || len(s.Users(none.UUID)) != 0 || none.DataCenter != "us2" {
		t.Errorf("CreateCompany(Users: -1) = %+v, %v, %d users", none, err, len(s.Users(none.UUID)))
	}
	if len(s.Users(testCompany)) != DefaultUsers {
		t.Error("companies added with AddCompany keep Options.Users")
	}
	defer func() {
		if recover() == nil {
			t.Error("NewCompany at an unknown data centre must panic")
		}
	}()
	s.NewCompany("ap9")
}

// Revoking one company's connection must not touch another's tokens.
func TestRevokeIsPerConnection(t *testing.T) {
	s := newSim(t, Options{})
	other := s.NewCompany("")
	mine, theirs := s.NewRefreshToken(testClient, testCompany), s.NewRefreshToken(testClient, other)
	theirAccess := postForm(t, s, s.URL, refreshForm(theirs)).body["access_token"].(string)
	s.RevokeConnection(testClient, testCompany)
	if s.RefreshTokenValid(mine) || !s.RefreshTokenValid(theirs) {
		t.Fatal("RevokeConnection crossed companies")
	}
	if r := get(t, s, usersPath, theirAccess); r.status != 200 {
		t.Errorf("the other company's access token after a revoke: %d", r.status)
	}
	if s.CurrentRefreshToken(testClient, testCompany) != "" || s.CurrentRefreshToken(testClient, other) != theirs {
		t.Error("CurrentRefreshToken after a revoke")
	}
}

// BenchmarkRefreshGrant10kCompanies shows a refresh grant costs the same
// with 1 and with 10,000 companies (each with a live refresh token): compare
// the ns/op of the two sub-benchmarks. Served through the data centre's
// handler, without the network.
func BenchmarkRefreshGrant10kCompanies(b *testing.B) {
	for _, n := range []int{1, 10_000} {
		b.Run(fmt.Sprintf("companies=%d", n), func(b *testing.B) {
			s := NewServer(Options{Clock: NewClock(testEpoch)})
			defer s.Close()
			s.AddClient(testClient, testSecret)
			tokens := make([]string, n)
			for i := range tokens {
				tokens[i] = s.NewRefreshToken(testClient, s.NewCompany(""))
			}
			h := s.Handler()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				body := refreshForm(tokens[i%n]).Encode()
				req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/oauth2/v0/token", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("refresh: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkNewCompany is the cost of one more company (with a request token).
func BenchmarkNewCompany(b *testing.B) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddClient(testClient, testSecret)
	b.ReportAllocs()
	for b.Loop() {
		s.NewRequestToken(testClient, s.NewCompany(""))
	}
}
