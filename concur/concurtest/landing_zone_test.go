package concurtest

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
)

func getAt(t *testing.T, s *Server, base, path, bearer string) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	return do(t, s.Client(), req)
}

// newLandingZoneSim has a landing zone and two data centres; the test
// company lives in the second one (eu2).
func newLandingZoneSim(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.DataCenters = []string{LandingZone, "us2", "eu2"}
	s := newSim(t, opts)
	s.AddCompany(testCompany, "eu2")
	return s
}

func TestLandingZoneAnswersTheCompanyGrantWithTheCompanysGeolocation(t *testing.T) {
	s := newLandingZoneSim(t, Options{})
	glz, eu2 := s.URLOf(LandingZone), s.URLOf("eu2")

	r := postForm(t, s, glz, passwordForm(testCompany, s.NewRequestToken(testClient, testCompany)))
	if r.status != http.StatusOK || r.body["geolocation"] != eu2 {
		t.Fatalf("password grant at GLZ: %d %s, want 200 with geolocation %s", r.status, r.raw, eu2)
	}
	claims, err := DecodeJWTClaims(r.body["access_token"].(string))
	if err != nil || claims["iss"] != eu2 {
		t.Errorf("access token iss = %v (%v), want the company's data centre %s", claims["iss"], err, eu2)
	}

	// Data centres other than the company's own keep answering code 16.
	r2 := postForm(t, s, s.URLOf("us2"), passwordForm(testCompany, s.NewRequestToken(testClient, testCompany)))
	wantOAuthError(t, r2, http.StatusBadRequest, "invalid_request", CodeWrongDataCenter)
	if r2.body["geolocation"] != eu2 {
		t.Errorf("code 16 from us2 names %v, want %s", r2.body["geolocation"], eu2)
	}

	// A refresh belongs at the geolocation: GLZ sends it there.
	refreshToken := r.body["refresh_token"].(string)
	r3 := postForm(t, s, glz, refreshForm(refreshToken))
	wantOAuthError(t, r3, http.StatusBadRequest, "invalid_request", CodeWrongDataCenter)
	if r3.body["geolocation"] != eu2 {
		t.Errorf("refresh at GLZ: code 16 names %v, want %s", r3.body["geolocation"], eu2)
	}
	if r4 := postForm(t, s, eu2, refreshForm(refreshToken)); r4.status != http.StatusOK || r4.body["geolocation"] != eu2 {
		t.Errorf("refresh at the geolocation: %d %s", r4.status, r4.raw)
	}

	// Identity lives at the geolocation, not at the landing zone.
	access := r.body["access_token"].(string)
	if got := getAt(t, s, glz, usersPath, access); got.status != http.StatusNotFound {
		t.Errorf("Identity at GLZ: %d %s, want 404", got.status, got.raw)
	}
	if got := getAt(t, s, eu2, usersPath, access); got.status != http.StatusOK {
		t.Errorf("Identity at the geolocation: %d %s", got.status, got.raw)
	}
	if s.CallsAt(LandingZone, EndpointToken) != 2 || s.CallsAt("eu2", EndpointToken) != 1 || s.CallsAt("eu2", EndpointUsers) != 1 {
		t.Errorf("calls: glz token %d, eu2 token %d, eu2 users %d; want 2, 1, 1", s.CallsAt(LandingZone, EndpointToken),
			s.CallsAt("eu2", EndpointToken), s.CallsAt("eu2", EndpointUsers))
	}
}

func TestLandingZoneServesAllReading(t *testing.T) {
	s := newLandingZoneSim(t, Options{LandingZoneServesAll: true})
	glz, eu2 := s.URLOf(LandingZone), s.URLOf("eu2")
	r := postForm(t, s, glz, passwordForm(testCompany, s.NewRequestToken(testClient, testCompany)))
	if r.status != http.StatusOK {
		t.Fatalf("password grant at GLZ: %d %s", r.status, r.raw)
	}
	r2 := postForm(t, s, glz, refreshForm(r.body["refresh_token"].(string)))
	if r2.status != http.StatusOK || r2.body["geolocation"] != eu2 {
		t.Errorf("refresh at GLZ (serves all): %d %s, want 200 naming %s", r2.status, r2.raw, eu2)
	}
	if got := getAt(t, s, glz, usersPath, r2.body["access_token"].(string)); got.status != http.StatusOK {
		t.Errorf("Identity at GLZ (serves all): %d %s", got.status, got.raw)
	}
}

func TestLandingZoneIsNoHomeForCompanies(t *testing.T) {
	s := newSim(t, Options{DataCenters: []string{LandingZone, "us2"}})
	other := "3df11695-e8bb-40ff-8e98-c85913ab2789"
	s.AddCompany(other, "")
	r := postForm(t, s, s.URLOf("us2"), passwordForm(other, s.NewRequestToken(testClient, other)))
	if r.status != http.StatusOK {
		t.Errorf("a company added without a data centre does not live in us2: %d %s", r.status, r.raw)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("AddCompany at the landing zone did not panic")
			}
		}()
		s.AddCompany(other, LandingZone)
	}()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := NewServerOn(ln, Options{DataCenters: []string{LandingZone}}); err == nil || !strings.Contains(err.Error(), "landing zone") {
		t.Errorf("a landing zone alone: err %v, want a refusal", err)
	}
}
