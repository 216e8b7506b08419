package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Issue 11 point 1: the company grant goes to the Global Landing Zone, which
// answers for a company of another data centre with that company's
// geolocation; refreshes and Identity then go to the geolocation.
func TestBootstrapThroughLandingZoneThenUseTheGeolocation(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{DataCenters: []string{concurtest.LandingZone, "us2", "eu2"}, Users: 3})
	e.sim.AddCompany(testCompany, "eu2")
	glz, eu2 := e.sim.URLOf(concurtest.LandingZone), e.sim.URLOf("eu2")
	if e.sim.URL != glz {
		t.Fatalf("the test expects the landing zone first")
	}

	resp := e.bootstrap()
	if resp.Data["geolocation"] != eu2 || resp.Data["base_url"] != glz {
		t.Fatalf("after bootstrap: geolocation %v base_url %v, want %s and %s", resp.Data["geolocation"], resp.Data["base_url"], eu2, glz)
	}
	if got := e.sim.CallsAt(concurtest.LandingZone, concurtest.EndpointToken); got != 1 {
		t.Errorf("token calls at GLZ = %d, want 1 (the password grant)", got)
	}

	e.clock.Advance(time.Minute)
	e.mustOK(logical.UpdateOperation, "rotate", nil)
	if got := e.sim.CallsAt("eu2", concurtest.EndpointToken); got != 1 {
		t.Errorf("refresh grants at eu2 = %d, want 1", got)
	}
	if got := e.sim.CallsAt(concurtest.LandingZone, concurtest.EndpointToken); got != 1 {
		t.Errorf("the refresh went to GLZ (%d token calls there)", got)
	}

	user := e.sim.Users(testCompany)[0]
	if u := profileUser(t, e.mustOK(logical.ReadOperation, "profile/"+user.ID, nil)); u["id"] != user.ID {
		t.Errorf("profile read: %v", u)
	}
	if got := e.sim.CallsAt("eu2", concurtest.EndpointUsers); got != 1 {
		t.Errorf("Identity calls at eu2 = %d, want 1", got)
	}
	if creds := e.creds(); creds["geolocation"] != eu2 {
		t.Errorf("creds geolocation %v, want %s", creds["geolocation"], eu2)
	}
}

// A new config defaults to GLZ; a stored base_url (an older default
// included) is kept as it is by later writes.
func TestBaseURLDefaultIsLandingZoneAndStoredValuesStay(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	data := e.baseConfig()
	delete(data, "base_url")
	data["allowed_hosts"] = concur.DefaultAllowedHost
	resp := e.mustOK(logical.CreateOperation, "config", data)
	if resp.Data["base_url"] != "https://glz.api.concursolutions.com" {
		t.Errorf("default base_url = %v, want the Global Landing Zone", resp.Data["base_url"])
	}

	legacy := &legacyState{Config: legacyConfig{appEntry: appEntry{ClientID: testClientID, ClientSecret: testClientSecret,
		BaseURL: "https://us.api.concursolutions.com", AllowedHosts: []string{concur.DefaultAllowedHost}, RefreshMargin: 10 * time.Minute},
		CompanyUUID: testCompany}, Token: tokenEntry{Status: statusNeedsBootstrap}}
	e2 := newTestEnv(t, concurtest.Options{})
	if err := putJSON(context.Background(), e2.storage, legacyStorageKey, legacy); err != nil {
		t.Fatal(err)
	}
	e2.mustOK(logical.UpdateOperation, "config", map[string]any{"client_secret": "rotated-secret"})
	if got := e2.mustOK(logical.ReadOperation, "config", nil).Data["base_url"]; got != "https://us.api.concursolutions.com" {
		t.Errorf("stored base_url became %v after a write without base_url", got)
	}
}

// Issue 11 point 4: a refresh token imported from SAP's tutorial files comes
// with its geolocation; the refresh grant that checks it goes there.
func TestImportRefreshTokenWithGeolocation(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{DataCenters: []string{concurtest.LandingZone, "us2", "eu2"}})
	e.sim.AddCompany(testCompany, "eu2")
	eu2 := e.sim.URLOf("eu2")
	refresh := e.sim.NewRefreshToken(testClientID, testCompany)

	for _, tc := range []struct {
		name string
		data map[string]any
		want string
	}{
		{"not allowed", map[string]any{"refresh_token": refresh, "geolocation": "https://evil.example.com"}, "geolocation"},
		{"not a URL", map[string]any{"refresh_token": refresh, "geolocation": "us2 please"}, "geolocation"},
		{"empty", map[string]any{"refresh_token": refresh, "geolocation": ""}, "geolocation"},
		{"without refresh_token", map[string]any{"request_token": "at-x", "geolocation": eu2}, "geolocation"},
	} {
		data := e.baseConfig()
		for k, v := range tc.data {
			data[k] = v
		}
		resp, err := e.request(logical.CreateOperation, "config", data)
		if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), tc.want) {
			t.Errorf("%s: got %v / %v, want a 400 naming %s", tc.name, resp, err, tc.want)
		}
	}
	if n := e.sim.Calls(concurtest.EndpointToken); n != 0 {
		t.Fatalf("refused imports reached Concur %d times", n)
	}

	data := e.baseConfig()
	data["refresh_token"], data["geolocation"] = refresh, eu2+"/"
	resp := e.mustOK(logical.CreateOperation, "config", data)
	if resp.Data["geolocation"] != eu2 || resp.Data["status"] != statusOK {
		t.Errorf("after import: %v", resp.Data)
	}
	if e.sim.CallsAt("eu2", concurtest.EndpointToken) != 1 || e.sim.CallsAt(concurtest.LandingZone, concurtest.EndpointToken) != 0 {
		t.Errorf("the check went to GLZ (%d) instead of straight to the geolocation (%d)",
			e.sim.CallsAt(concurtest.LandingZone, concurtest.EndpointToken), e.sim.CallsAt("eu2", concurtest.EndpointToken))
	}
}
