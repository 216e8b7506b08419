package concurtest

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPasswordGrantResponse(t *testing.T) {
	s := newSim(t, Options{})
	r := grant(t, s)

	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if r.header.Get("Concur-Correlationid") == "" {
		t.Error("no correlation id")
	}
	b := r.body
	if b["token_type"] != "Bearer" {
		t.Errorf("token_type = %v", b["token_type"])
	}
	if b["expires_in"] != float64(3600) {
		t.Errorf("expires_in = %#v, want number 3600", b["expires_in"])
	}
	wantRefreshExp := float64(testEpoch.AddDate(0, 6, 0).Unix())
	if b["refresh_expires_in"] != wantRefreshExp {
		t.Errorf("refresh_expires_in = %#v, want epoch %v", b["refresh_expires_in"], wantRefreshExp)
	}
	if b["geolocation"] != s.URL {
		t.Errorf("geolocation = %v, want %s", b["geolocation"], s.URL)
	}
	if rt, _ := b["refresh_token"].(string); !isUUID(rt) {
		t.Errorf("refresh_token = %q, want UUID-like", rt)
	}
	if b["scope"] != strings.Join(DefaultScopes(), " ") {
		t.Errorf("scope = %v", b["scope"])
	}
	claims, err := DecodeJWTClaims(b["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if claims["sub"] != testCompany || claims["iss"] != s.URL || claims["concur.type"] != "company" {
		t.Errorf("access claims = %v", claims)
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 3600 || int64(iat) != testEpoch.Unix() {
		t.Errorf("exp/iat = %v/%v", exp, iat)
	}
	if sc, _ := claims["concur.scopes"].([]any); len(sc) != len(DefaultScopes()) {
		t.Errorf("concur.scopes = %v", claims["concur.scopes"])
	}
	id, err := DecodeJWTClaims(b["id_token"].(string))
	if err != nil || id["sub"] != testCompany || id["aud"] != testClient {
		t.Errorf("id_token claims = %v (%v)", id, err)
	}
	if s.CurrentRefreshToken(testClient, testCompany) != b["refresh_token"] {
		t.Error("CurrentRefreshToken does not name the issued token")
	}
	if s.GrantCalls("password") != 1 || s.Calls(EndpointToken) != 1 {
		t.Errorf("counters: password=%d token=%d", s.GrantCalls("password"), s.Calls(EndpointToken))
	}
}

func TestExpiresAsStrings(t *testing.T) {
	s := newSim(t, Options{ExpiresAsStrings: true})
	r := grant(t, s)
	if r.body["expires_in"] != "3600" {
		t.Errorf("expires_in = %#v", r.body["expires_in"])
	}
	if want := testEpoch.AddDate(0, 6, 0).Unix(); r.body["refresh_expires_in"] != strconv.FormatInt(want, 10) {
		t.Errorf("refresh_expires_in = %#v", r.body["refresh_expires_in"])
	}
}

func TestTokenErrors(t *testing.T) {
	s := newSim(t, Options{})
	s.AddClient("other-client", "other-secret")
	s.AddClient("disabled-client", "disabled-secret")
	s.SetClientEnabled("disabled-client", false)
	s.AddCompany("11111111-2222-4333-8444-555555555555", "")
	s.SetCompanyEnabled(testClient, "11111111-2222-4333-8444-555555555555", false)
	otherClientsToken := s.NewRequestToken("other-client", testCompany)
	disabledCompanyToken := s.NewRequestToken(testClient, "11111111-2222-4333-8444-555555555555")
	valid := s.NewRequestToken(testClient, testCompany)

	with := func(f url.Values, k, v string) url.Values {
		f = url.Values(cloneValues(f))
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	pw := passwordForm(testCompany, valid)
	cases := []struct {
		name    string
		form    url.Values
		status  int
		errName string
		code    int
	}{
		{"no client_id", with(pw, "client_id", ""), 400, "invalid_request", CodeNoClientID},
		{"no client_secret", with(pw, "client_secret", ""), 400, "invalid_request", CodeNoClientSecret},
		{"unknown client", with(pw, "client_id", "nobody"), 400, "invalid_client", CodeClientNotFound},
		{"bad secret", with(pw, "client_secret", "wrong"), 400, "invalid_client", CodeBadClientSecret},
		{"disabled client", with(with(pw, "client_id", "disabled-client"), "client_secret", "disabled-secret"),
			400, "access_denied", CodeClientDisabled},
		{"no grant_type", with(pw, "grant_type", ""), 400, "invalid_request", CodeNoGrantType},
		{"client_credentials", with(pw, "grant_type", "client_credentials"), 400, "invalid_grant", CodeGrantNotAllowed},
		{"no username", with(pw, "username", ""), 400, "invalid_request", CodeNoUsername},
		{"no password", with(pw, "password", ""), 400, "invalid_request", CodeNoPassword},
		{"no credtype", with(pw, "credtype", ""), 400, "invalid_grant", CodeBadCredentials},
		{"bad credtype", with(pw, "credtype", "magic"), 400, "invalid_request", CodeBadCredtype},
		{"unknown company", with(pw, "username", "99999999-2222-4333-8444-555555555555"), 400, "invalid_grant", CodeBadCredentials},
		{"unknown request token", with(pw, "password", "at-nope"), 400, "invalid_grant", CodeBadCredentials},
		{"token of other client", with(pw, "password", otherClientsToken), 400, "invalid_request", CodeAuthtokenNotForYou},
		{"company not enabled", passwordForm("11111111-2222-4333-8444-555555555555", disabledCompanyToken),
			403, "invalid_client", CodeCompanyNotEnabled},
		{"no refresh_token", with(refreshForm("x"), "refresh_token", ""), 400, "invalid_request", CodeNoRefreshToken},
		{"unknown refresh_token", refreshForm("not-a-token"), 400, "invalid_grant", CodeBadRefreshToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.ErrorCount(tc.code)
			r := postForm(t, s, s.URL, tc.form)
			wantOAuthError(t, r, tc.status, tc.errName, tc.code)
			if got := s.ErrorCount(tc.code); got != before+1 {
				t.Errorf("ErrorCount(%d) = %d, want %d", tc.code, got, before+1)
			}
		})
	}
	// None of the failures used up the valid request token.
	if r := postForm(t, s, s.URL, pw); r.status != 200 {
		t.Fatalf("valid grant after failures: %d %s", r.status, r.raw)
	}
}

func cloneValues(v url.Values) map[string][]string {
	out := map[string][]string{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func TestTokenEndpointFormOnly(t *testing.T) {
	s := newSim(t, Options{RejectCharset: true})
	rt := s.NewRequestToken(testClient, testCompany)
	send := func(ct string, body string) reply {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+"/oauth2/v0/token", strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		return do(t, s.Client(), req)
	}
	js := `{"client_id":"` + testClient + `","client_secret":"` + testSecret + `","grant_type":"password"}`
	wantOAuthError(t, send("application/json", js), 400, "invalid_request", CodeUnsupportedFormat)
	wantOAuthError(t, send("", passwordForm(testCompany, rt).Encode()), 400, "invalid_request", CodeUnsupportedFormat)
	wantOAuthError(t, send("application/x-www-form-urlencoded; charset=utf-8", passwordForm(testCompany, rt).Encode()),
		400, "invalid_request", CodeUnsupportedFormat)

	// Credentials in the query string do not count.
	q := passwordForm(testCompany, rt)
	req, _ := http.NewRequestWithContext(
		context.Background(), http.MethodPost, s.URL+"/oauth2/v0/token?"+q.Encode(), strings.NewReader("grant_type=password"),
	)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	wantOAuthError(t, do(t, s.Client(), req), 400, "invalid_request", CodeNoClientID)

	if r := send("application/x-www-form-urlencoded", passwordForm(testCompany, rt).Encode()); r.status != 200 {
		t.Fatalf("plain form: %d %s", r.status, r.raw)
	}

	// Without RejectCharset a charset is tolerated.
	s2 := newSim(t, Options{})
	req, _ = http.NewRequestWithContext(context.Background(), http.MethodPost, s2.URL+"/oauth2/v0/token",
		strings.NewReader(passwordForm(testCompany, s2.NewRequestToken(testClient, testCompany)).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if r := do(t, s2.Client(), req); r.status != 200 {
		t.Fatalf("charset tolerated: %d %s", r.status, r.raw)
	}
}

func TestRequestTokenExpiry(t *testing.T) {
	s := newSim(t, Options{RequestTokenUses: -1})
	rt := s.NewRequestToken(testClient, testCompany)
	s.Clock.Advance(24*time.Hour - time.Second)
	if r := postForm(t, s, s.URL, passwordForm(testCompany, rt)); r.status != 200 {
		t.Fatalf("just before 24h: %d %s", r.status, r.raw)
	}
	s.Clock.Advance(time.Second)
	r := postForm(t, s, s.URL, passwordForm(testCompany, rt))
	wantOAuthError(t, r, 400, "invalid_grant", CodeBadCredentials)
	if r.body["error_description"] != "Incorrect Credentials. Please Retry" {
		t.Errorf("description = %v", r.body["error_description"])
	}

	s12 := newSim(t, Options{RequestTokenTTL: 12 * time.Hour})
	rt = s12.NewRequestToken(testClient, testCompany)
	s12.Clock.Advance(12 * time.Hour)
	wantOAuthError(t, postForm(t, s12, s12.URL, passwordForm(testCompany, rt)), 400, "invalid_grant", CodeBadCredentials)
}

func TestRequestTokenUseLimit(t *testing.T) {
	for _, uses := range []int{1, 5} {
		s := newSim(t, Options{RequestTokenUses: uses})
		rt := s.NewRequestToken(testClient, testCompany)
		seen := map[string]bool{}
		for i := 0; i < uses; i++ {
			r := postForm(t, s, s.URL, passwordForm(testCompany, rt))
			if r.status != 200 {
				t.Fatalf("uses=%d: use %d: %d %s", uses, i+1, r.status, r.raw)
			}
			seen[r.body["refresh_token"].(string)] = true
		}
		if len(seen) != uses {
			t.Errorf("each password grant should issue a new refresh token: %d distinct", len(seen))
		}
		wantOAuthError(t, postForm(t, s, s.URL, passwordForm(testCompany, rt)), 400, "invalid_grant", CodeBadCredentials)
	}
	// Default is five uses.
	s := newSim(t, Options{})
	rt := s.NewRequestToken(testClient, testCompany)
	for i := 0; i < DefaultRequestUses; i++ {
		postForm(t, s, s.URL, passwordForm(testCompany, rt))
	}
	wantOAuthError(t, postForm(t, s, s.URL, passwordForm(testCompany, rt)), 400, "invalid_grant", CodeBadCredentials)
}

func TestAddRequestAndRefreshToken(t *testing.T) {
	s := newSim(t, Options{})
	s.AddRequestToken(testClient, testCompany, "at-fixedvalue")
	if r := postForm(t, s, s.URL, passwordForm(testCompany, "at-fixedvalue")); r.status != 200 {
		t.Fatalf("seeded request token: %d %s", r.status, r.raw)
	}
	s.AddRefreshToken(testClient, testCompany, "seeded-refresh")
	r := refresh(t, s, "seeded-refresh")
	if r.status != 200 || r.body["refresh_token"] != "seeded-refresh" {
		t.Fatalf("seeded refresh: %d %s", r.status, r.raw)
	}
}

func TestWrongDataCenter(t *testing.T) {
	s := newSim(t, Options{DataCenters: []string{"us2", "eu2"}})
	const euCompany = "3df11695-e8bb-40ff-8e98-c85913ab2789"
	s.AddCompany(euCompany, "eu2")
	eu := s.URLOf("eu2")
	if eu == "" || eu == s.URL || s.URLOf("us2") != s.URL || s.URLOf("nowhere") != "" {
		t.Fatalf("URLs: us2=%s eu2=%s", s.URL, eu)
	}
	rt := s.NewRequestToken(testClient, euCompany)

	r := postForm(t, s, s.URL, passwordForm(euCompany, rt))
	wantOAuthError(t, r, 400, "invalid_request", CodeWrongDataCenter)
	if r.body["error_description"] != "user lives elsewhere" || r.body["geolocation"] != eu {
		t.Fatalf("code 16 body: %s", r.raw)
	}
	if r.body["concur-correlationid"] != r.header.Get("Concur-Correlationid") {
		t.Errorf("body correlation id %v != header %s", r.body["concur-correlationid"], r.header.Get("Concur-Correlationid"))
	}

	// Following the redirect works, and did not cost a use of the token.
	r = postForm(t, s, eu, passwordForm(euCompany, rt))
	if r.status != 200 || r.body["geolocation"] != eu {
		t.Fatalf("at home: %d %s", r.status, r.raw)
	}
	claims, _ := DecodeJWTClaims(r.body["access_token"].(string))
	if claims["iss"] != eu {
		t.Errorf("iss = %v", claims["iss"])
	}
	refreshTok := r.body["refresh_token"].(string)

	// Refresh grant at the wrong DC: code 16 too, and no state change.
	r = postForm(t, s, s.URL, refreshForm(refreshTok))
	wantOAuthError(t, r, 400, "invalid_request", CodeWrongDataCenter)
	if r.body["geolocation"] != eu {
		t.Errorf("geolocation = %v", r.body["geolocation"])
	}
	if r := postForm(t, s, eu, refreshForm(refreshTok)); r.status != 200 {
		t.Fatalf("refresh at home: %d %s", r.status, r.raw)
	}

	// The company moves: its geolocation changes and the old DC redirects.
	s.AddCompany(euCompany, "us2")
	r = postForm(t, s, eu, refreshForm(refreshTok))
	if r.code() != CodeWrongDataCenter || r.body["geolocation"] != s.URL {
		t.Fatalf("after move: %s", r.raw)
	}
	if s.ErrorCount(CodeWrongDataCenter) != 3 {
		t.Errorf("ErrorCount(16) = %d", s.ErrorCount(CodeWrongDataCenter))
	}
}

func TestGeolocationOption(t *testing.T) {
	const geo = "https://us2.api.concursolutions.com"
	s := newSim(t, Options{Geolocation: geo})
	r := grant(t, s)
	if r.body["geolocation"] != geo {
		t.Errorf("geolocation = %v", r.body["geolocation"])
	}
	r = refresh(t, s, "unknown")
	if r.body["geolocation"] != geo {
		t.Errorf("108 geolocation = %v", r.body["geolocation"])
	}
}

func TestRotationStable(t *testing.T) {
	s := newSim(t, Options{})
	first := grant(t, s).body["refresh_token"].(string)
	for i := 0; i < 3; i++ {
		r := refresh(t, s, first)
		if r.status != 200 || r.body["refresh_token"] != first {
			t.Fatalf("refresh %d: %d %s", i, r.status, r.raw)
		}
	}
	if s.RefreshTokenUses(first) != 3 || s.GrantCalls("refresh_token") != 3 {
		t.Errorf("uses=%d grants=%d", s.RefreshTokenUses(first), s.GrantCalls("refresh_token"))
	}
}

func TestRotationRotate(t *testing.T) {
	s := newSim(t, Options{Rotation: RotationRotate})
	old := grant(t, s).body["refresh_token"].(string)
	r := refresh(t, s, old)
	next := r.body["refresh_token"].(string)
	if r.status != 200 || next == old {
		t.Fatalf("rotate: %d %s", r.status, r.raw)
	}
	if s.CurrentRefreshToken(testClient, testCompany) != next {
		t.Error("CurrentRefreshToken is not the rotated one")
	}
	// The old value is dead at once.
	r = refresh(t, s, old)
	wantOAuthError(t, r, 400, "invalid_grant", CodeBadRefreshToken)
	if r.body["error_description"] != "bad or expired refresh token" || r.body["geolocation"] != s.URL {
		t.Errorf("108 body: %s", r.raw)
	}
	if r := refresh(t, s, next); r.status != 200 {
		t.Fatalf("new token: %d %s", r.status, r.raw)
	}
}

func TestRotationGrace(t *testing.T) {
	s := newSim(t, Options{Rotation: RotationGrace, GraceWindow: time.Minute})
	old := grant(t, s).body["refresh_token"].(string)
	next := refresh(t, s, old).body["refresh_token"].(string)
	if next == old || next == "" {
		t.Fatalf("grace should issue a new value")
	}
	s.Clock.Advance(59 * time.Second)
	if !s.RefreshTokenValid(old) {
		t.Fatal("old token should live through the grace window")
	}
	// A retry with the old token inside the window still succeeds.
	r := refresh(t, s, old)
	if r.status != 200 {
		t.Fatalf("old token in grace: %d %s", r.status, r.raw)
	}
	s.Clock.Advance(time.Second)
	wantOAuthError(t, refresh(t, s, old), 400, "invalid_grant", CodeBadRefreshToken)
	if r := refresh(t, s, next); r.status != 200 {
		t.Fatalf("new token after grace: %d %s", r.status, r.raw)
	}
}

func TestSetRotationAtRuntime(t *testing.T) {
	s := newSim(t, Options{})
	tok := grant(t, s).body["refresh_token"].(string)
	if refresh(t, s, tok).body["refresh_token"] != tok {
		t.Fatal("stable should return the same value")
	}
	s.SetRotation(RotationRotate)
	if s.CurrentRotation() != RotationRotate {
		t.Fatal("rotation not changed")
	}
	if got := refresh(t, s, tok).body["refresh_token"]; got == tok {
		t.Fatal("rotate should return a new value")
	}
	if s.RefreshTokenValid(tok) {
		t.Fatal("old value should be dead")
	}
}

func TestRefreshExpirySlides(t *testing.T) {
	s := newSim(t, Options{})
	tok := grant(t, s).body["refresh_token"].(string)
	if got := s.RefreshTokenExpiry(tok); !got.Equal(testEpoch.AddDate(0, 6, 0)) {
		t.Fatalf("initial expiry %v", got)
	}
	// Refresh every five months: the token never dies.
	for i := 0; i < 3; i++ {
		s.Clock.Advance(150 * 24 * time.Hour)
		r := refresh(t, s, tok)
		if r.status != 200 {
			t.Fatalf("refresh %d: %d %s", i, r.status, r.raw)
		}
		want := s.Clock.Now().AddDate(0, 6, 0).Unix()
		if int64(r.body["refresh_expires_in"].(float64)) != want {
			t.Fatalf("refresh_expires_in = %v, want %d", r.body["refresh_expires_in"], want)
		}
	}
	// Idle for more than six months: expired.
	s.Clock.Advance(185 * 24 * time.Hour)
	wantOAuthError(t, refresh(t, s, tok), 400, "invalid_grant", CodeBadRefreshToken)
	if s.CurrentRefreshToken(testClient, testCompany) != "" {
		t.Error("no live refresh token should remain")
	}
}

func TestRefreshTokenTTLOption(t *testing.T) {
	s := newSim(t, Options{RefreshTokenTTL: time.Hour})
	tok := s.NewRefreshToken(testClient, testCompany)
	s.Clock.Advance(time.Hour)
	wantOAuthError(t, refresh(t, s, tok), 400, "invalid_grant", CodeBadRefreshToken)
}

func TestRefreshErrorStatus(t *testing.T) {
	s := newSim(t, Options{RefreshErrorStatus: http.StatusForbidden})
	wantOAuthError(t, refresh(t, s, "nope"), 403, "invalid_grant", CodeBadRefreshToken)
}

func TestRefreshTokenOfOtherClient(t *testing.T) {
	s := newSim(t, Options{})
	s.AddClient("other", "other-secret")
	tok := s.NewRefreshToken("other", testCompany)
	wantOAuthError(t, refresh(t, s, tok), 400, "invalid_grant", CodeBadRefreshToken)
}

func TestDisabledClientAndCompanyOnRefresh(t *testing.T) {
	s := newSim(t, Options{})
	tok := s.NewRefreshToken(testClient, testCompany)
	s.SetCompanyEnabled(testClient, testCompany, false)
	wantOAuthError(t, refresh(t, s, tok), 403, "invalid_client", CodeCompanyNotEnabled)
	s.SetCompanyEnabled(testClient, testCompany, true)
	s.SetClientEnabled(testClient, false)
	wantOAuthError(t, refresh(t, s, tok), 400, "access_denied", CodeClientDisabled)
	s.SetClientEnabled(testClient, true)
	if r := refresh(t, s, tok); r.status != 200 {
		t.Fatalf("re-enabled: %d %s", r.status, r.raw)
	}
}

func TestRevokeConnectionEndpoint(t *testing.T) {
	s := newSim(t, Options{})
	r := grant(t, s)
	access, tok := r.body["access_token"].(string), r.body["refresh_token"].(string)
	other := s.NewRefreshToken(testClient, testCompany)

	req, _ := http.NewRequestWithContext(context.Background(), http.MethodDelete, s.URL+"/app-mgmt/v0/connections", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	del := do(t, s.Client(), req)
	if del.status != 200 || del.header.Get("Concur-Correlationid") == "" {
		t.Fatalf("revoke: %d %s", del.status, del.raw)
	}
	if s.Calls(EndpointConnections) != 1 {
		t.Errorf("Calls(connections) = %d", s.Calls(EndpointConnections))
	}
	for _, v := range []string{tok, other} {
		wantOAuthError(t, refresh(t, s, v), 400, "invalid_grant", CodeBadRefreshToken)
	}
	if r := get(t, s, usersPath, access); r.status != 401 {
		t.Errorf("revoked bearer at Identity: %d", r.status)
	}
	// A second revocation with the dead token is unauthorized.
	req, _ = http.NewRequestWithContext(context.Background(), http.MethodDelete, s.URL+"/app-mgmt/v0/connections", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	if r := do(t, s.Client(), req); r.status != 401 {
		t.Errorf("second revoke: %d", r.status)
	}
	req, _ = http.NewRequestWithContext(context.Background(), http.MethodDelete, s.URL+"/app-mgmt/v0/connections", nil)
	if r := do(t, s.Client(), req); r.status != 401 {
		t.Errorf("revoke without bearer: %d", r.status)
	}
	// A new request token starts a new connection.
	grant(t, s)
}

func TestAdminRevokeConnection(t *testing.T) {
	s := newSim(t, Options{})
	r := grant(t, s)
	s.RevokeConnection(testClient, testCompany)
	wantOAuthError(t, refresh(t, s, r.body["refresh_token"].(string)), 400, "invalid_grant", CodeBadRefreshToken)
	if g := get(t, s, usersPath, r.body["access_token"].(string)); g.status != 401 {
		t.Errorf("access token after admin revoke: %d", g.status)
	}
	if s.CurrentRefreshToken(testClient, testCompany) != "" {
		t.Error("current refresh token after revoke")
	}
}

func TestAccessTokenTTLOption(t *testing.T) {
	s := newSim(t, Options{AccessTokenTTL: 90 * time.Second})
	r := grant(t, s)
	if got := r.body["expires_in"]; got != float64(90) {
		t.Errorf("expires_in %v, want 90", got)
	}
	access := r.body["access_token"].(string)
	if got := get(t, s, "/profile/identity/v4/Users", access).status; got != 200 {
		t.Fatalf("fresh token refused: %d", got)
	}
	s.Clock.Advance(91 * time.Second)
	if got := get(t, s, "/profile/identity/v4/Users", access).status; got != 401 {
		t.Errorf("token past its 90 s lifetime: %d, want 401", got)
	}
}
