package backend

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

func TestConfigBootstrapByRequestToken(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	resp := e.bootstrap()

	if got := e.sim.GrantCalls("password"); got != 1 {
		t.Fatalf("password grants = %d, want 1", got)
	}
	d := resp.Data
	if d["status"] != statusOK {
		t.Errorf("status %v, want ok", d["status"])
	}
	if d["geolocation"] != e.sim.URL {
		t.Errorf("geolocation %v, want the simulator's %s", d["geolocation"], e.sim.URL)
	}
	wantExpiry := testEpoch.Add(time.Hour).Format(time.RFC3339)
	if d["access_token_expires_at"] != wantExpiry {
		t.Errorf("access_token_expires_at %v, want %s", d["access_token_expires_at"], wantExpiry)
	}
	if d["refresh_token_expires_at"] == "" {
		t.Errorf("refresh_token_expires_at missing")
	}

	// The refresh token Concur issued is the one stored.
	var st companyEntry
	if found, err := getJSON(t.Context(), e.storage, defaultCompanyKey, &st); err != nil || !found {
		t.Fatalf("stored state: found=%v err=%v", found, err)
	}
	if st.Token.RefreshToken != e.sim.CurrentRefreshToken(testClientID, testCompany) {
		t.Errorf("stored refresh token is not the one Concur issued")
	}
	// The request token is exchanged, never stored.
	raw, _ := e.storage.Get(t.Context(), defaultCompanyKey)
	if strings.Contains(string(raw.Value), "request_token") {
		t.Errorf("stored state mentions a request token")
	}
}

func TestConfigBootstrapByRefreshToken(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	seeded := e.sim.NewRefreshToken(testClientID, testCompany)
	data := e.baseConfig()
	data["refresh_token"] = seeded
	e.mustOK(logical.CreateOperation, "config", data)

	if got := e.sim.RefreshTokenUses(seeded); got != 1 {
		t.Fatalf("the given refresh token was used %d times, want 1", got)
	}
	// Under rotation the given token is dead now; the engine holds its successor.
	if e.b.defaultEntry().Token.RefreshToken == seeded {
		t.Errorf("the engine kept the rotated-out refresh token")
	}
	if e.b.defaultEntry().Token.RefreshToken != e.sim.CurrentRefreshToken(testClientID, testCompany) {
		t.Errorf("the engine does not hold Concur's current refresh token")
	}
	if c := e.creds(); c["access_token"] == "" {
		t.Errorf("no access token served after bootstrap")
	}
}

func TestConfigBootstrapFailureStoresNothing(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	data := e.baseConfig()
	data["request_token"] = "at-not-a-real-token"
	resp, err := e.request(logical.CreateOperation, "config", data)
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if resp == nil || !resp.IsError() {
		t.Fatalf("want a 400 response, got %#v", resp)
	}
	msg := resp.Error().Error()
	for _, want := range []string{"request_token", "code 5", "correlation id"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if raw, _ := e.storage.Get(t.Context(), defaultCompanyKey); raw != nil {
		t.Errorf("something was stored after a failed bootstrap")
	}
	if resp, _ := e.request(logical.ReadOperation, "config", nil); resp != nil {
		t.Errorf("config read after failed bootstrap: %#v, want nothing", resp.Data)
	}
}

func TestConfigBootstrapUpstreamTroubleIsAGatewayError(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.sim.InjectFault(concurtest.EndpointToken, 10, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 503})
	data := e.baseConfig()
	data["request_token"] = e.sim.NewRequestToken(testClientID, testCompany)
	_, err := e.request(logical.CreateOperation, "config", data)
	if codeOf(err) != 502 {
		t.Fatalf("error %v (code %d), want 502", err, codeOf(err))
	}
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("error %q does not name Concur's status", err)
	}
	if raw, _ := e.storage.Get(t.Context(), defaultCompanyKey); raw != nil {
		t.Errorf("something was stored after a failed bootstrap")
	}
}

func TestConfigReadShowsNoSecret(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	resp := e.mustOK(logical.ReadOperation, "config", nil)
	blob, _ := json.Marshal(resp.Data)
	for _, s := range e.secrets() {
		if strings.Contains(string(blob), s) {
			t.Errorf("config read reveals a secret")
		}
	}
	for _, k := range []string{"client_secret", "refresh_token", "request_token", "access_token"} {
		if _, ok := resp.Data[k]; ok {
			t.Errorf("config read has field %q", k)
		}
	}
	for _, k := range []string{"client_id", "company_uuid", "base_url", "allowed_hosts", "geolocation", "scope",
		"access_token_expires_at", "refresh_token_expires_at", "last_refresh_at", "last_error", "status"} {
		if _, ok := resp.Data[k]; !ok {
			t.Errorf("config read lacks field %q", k)
		}
	}
	if resp.Data["client_secret_set"] != true || resp.Data["refresh_token_set"] != true {
		t.Errorf("secret presence flags: %v %v", resp.Data["client_secret_set"], resp.Data["refresh_token_set"])
	}
}

func TestConfigPartialUpdateKeepsToken(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	before := e.b.defaultEntry().Token.RefreshToken
	calls := e.sim.Calls(concurtest.EndpointToken)

	e.mustOK(logical.UpdateOperation, "config", map[string]any{"refresh_margin": "20m"})
	if e.b.defaultEntry().Token.RefreshToken != before {
		t.Errorf("a settings-only write changed the refresh token")
	}
	if e.sim.Calls(concurtest.EndpointToken) != calls {
		t.Errorf("a settings-only write called Concur")
	}
	if got := e.mustOK(logical.ReadOperation, "config", nil).Data["refresh_margin"]; got != int64(1200) {
		t.Errorf("refresh_margin %v, want 1200", got)
	}
}

func TestConfigBadInputNamesTheField(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	cases := []struct {
		name  string
		edit  func(map[string]any)
		field string
	}{
		{"missing client_id", func(d map[string]any) { delete(d, "client_id") }, "client_id"},
		{"missing client_secret", func(d map[string]any) { delete(d, "client_secret") }, "client_secret"},
		{
			"missing company_uuid with a request token",
			func(d map[string]any) { delete(d, "company_uuid"); d["request_token"] = "x" },
			"company_uuid",
		},
		{"company_uuid not a uuid", func(d map[string]any) { d["company_uuid"] = "acme" }, "company_uuid"},
		{"client_id with spaces", func(d map[string]any) { d["client_id"] = "a b" }, "client_id"},
		{"base_url plain http elsewhere", func(d map[string]any) { d["base_url"] = "http://evil.example.com" }, "base_url"},
		{"base_url with userinfo", func(d map[string]any) { d["base_url"] = "https://us.api.concursolutions.com@evil.example.com" }, "base_url"},
		{"base_url not a url", func(d map[string]any) { d["base_url"] = "::::" }, "base_url"},
		{"allowed_hosts with a path", func(d map[string]any) { d["allowed_hosts"] = "https://*.concursolutions.com/x" }, "allowed_hosts"},
		{"allowed_hosts not matching base_url", func(d map[string]any) { d["allowed_hosts"] = "https://*.concursolutions.com" }, "base_url"},
		{"refresh_margin too small", func(d map[string]any) { d["refresh_margin"] = "10s" }, "refresh_margin"},
		{"refresh_margin too large", func(d map[string]any) { d["refresh_margin"] = "2h" }, "refresh_margin"},
		{"both tokens", func(d map[string]any) { d["request_token"] = "at-x"; d["refresh_token"] = "y" }, "request_token, refresh_token"},
		{"empty request token", func(d map[string]any) { d["request_token"] = "" }, "request_token"},
		{"oversized refresh token", func(d map[string]any) { d["refresh_token"] = strings.Repeat("x", maxFieldLength+1) }, "refresh_token"},
		{"unknown field", func(d map[string]any) { d["refresh_tokn"] = "x" }, "refresh_tokn"},
		{"revoke on write", func(d map[string]any) { d["revoke"] = true }, "revoke"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := e.baseConfig()
			tc.edit(data)
			resp, err := e.request(logical.CreateOperation, "config", data)
			if err != nil {
				t.Fatalf("error %v, want a 400 response", err)
			}
			if resp == nil || !resp.IsError() {
				t.Fatalf("accepted; want a 400 naming %s", tc.field)
			}
			if msg := resp.Error().Error(); !strings.HasPrefix(msg, tc.field) && !strings.Contains(msg, tc.field) {
				t.Errorf("error %q does not name %q", msg, tc.field)
			}
			if e.sim.Calls(concurtest.EndpointToken) != 0 {
				t.Errorf("bad input reached Concur")
			}
		})
	}
}

func TestConfigChangingCompanyNeedsANewToken(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	resp, err := e.request(logical.UpdateOperation, "config", map[string]any{"company_uuid": "3df11695-e8bb-40ff-8e98-c85913ab2789"})
	if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "company_uuid") {
		t.Fatalf("got %v / %v, want a 400 naming company_uuid", resp, err)
	}
}

func TestConfigDeleteAndRevoke(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	old := e.b.defaultEntry().Token.RefreshToken

	if _, err := e.request(logical.DeleteOperation, "config", map[string]any{"revoke": true}); err != nil {
		t.Fatal(err)
	}
	if e.sim.Calls(concurtest.EndpointConnections) != 1 {
		t.Errorf("revocation calls = %d, want 1", e.sim.Calls(concurtest.EndpointConnections))
	}
	if raw, _ := e.storage.Get(t.Context(), defaultCompanyKey); raw != nil {
		t.Errorf("state still stored after delete")
	}
	if _, err := e.request(logical.ReadOperation, "creds", nil); codeOf(err) != 400 {
		t.Errorf("creds after delete: %v, want 400 not configured", err)
	}
	// Concur no longer honours the revoked refresh token.
	if e.sim.CurrentRefreshToken(testClientID, testCompany) == old {
		t.Errorf("the refresh token survived revocation")
	}
}

func TestConfigDeleteKeepsEverythingWhenRevocationFails(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	e.sim.InjectFault(concurtest.EndpointConnections, 10, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 500})
	if _, err := e.request(logical.DeleteOperation, "config", map[string]any{"revoke": true}); codeOf(err) != 502 {
		t.Fatalf("delete with failing revocation: %v, want 502", err)
	}
	if raw, _ := e.storage.Get(t.Context(), defaultCompanyKey); raw == nil {
		t.Errorf("state deleted although revocation failed")
	}
}

func TestConfigFollowsGeolocationRedirect(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{DataCenters: []string{"us2", "eu2"}})
	company := "3df11695-e8bb-40ff-8e98-c85913ab2789"
	e.sim.AddCompany(company, "eu2")
	data := e.baseConfig()
	data["company_uuid"] = company
	data["request_token"] = e.sim.NewRequestToken(testClientID, company)
	resp := e.mustOK(logical.CreateOperation, "config", data)
	if resp.Data["geolocation"] != e.sim.URLOf("eu2") {
		t.Errorf("geolocation %v, want eu2's %s", resp.Data["geolocation"], e.sim.URLOf("eu2"))
	}
	// Renewals go to the company's own data centre from now on.
	if _, err := e.request(logical.UpdateOperation, "rotate", nil); err != nil {
		t.Fatal(err)
	}
	if n := e.sim.ErrorCount(16); n != 1 {
		t.Errorf("code-16 answers = %d, want only the first request's", n)
	}
}

// A token answer without a refresh token would serve for an hour and then
// strand the engine: the bootstrap fails and stores nothing.
func TestConfigBootstrapWithoutRefreshTokenStoresNothing(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	concurLike := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("concur-correlationid", "cid-123")
		_, _ = w.Write([]byte(`{"access_token":"at-1","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(concurLike.Close)
	data := e.baseConfig()
	data["base_url"] = concurLike.URL
	data["request_token"] = "at-request"
	_, err := e.request(logical.CreateOperation, "config", data)
	if codeOf(err) != 502 || !strings.Contains(err.Error(), "no refresh token") || !strings.Contains(err.Error(), "cid-123") {
		t.Fatalf("got %v, want 502 saying no refresh token came back, with the correlation id", err)
	}
	if raw, _ := e.storage.Get(t.Context(), defaultCompanyKey); raw != nil {
		t.Errorf("something was stored")
	}
}
