package concurtest

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// The faults of issue 10.8 process the request for real and then misbehave;
// the simulator's own record (current refresh token, dead tokens presented)
// tells whether a client kept custody.

func TestFaultHoldAnswersAfterTheStateChanged(t *testing.T) {
	s := newSim(t, Options{Rotation: RotationRotate})
	old := s.NewRefreshToken(testClient, testCompany)
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultHold, Delay: time.Minute})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/oauth2/v0/token", strings.NewReader(refreshForm(old).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := s.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	// The grant happens at once; only the answer waits.
	deadline := time.Now().Add(10 * time.Second)
	for s.CurrentRefreshToken(testClient, testCompany) == old {
		if time.Now().After(deadline) {
			t.Fatal("the held grant never changed the state")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("answer sent before the hold ended: %v", err)
	default:
	}
	cancel() // the client gives up: it never learns the new token
	if err := <-done; err == nil {
		t.Fatal("request succeeded after cancel")
	}
	if s.RefreshTokenValid(old) {
		t.Fatal("old token still live under strict rotation")
	}
	if s.DeadRefreshTokenUses() != 0 {
		t.Fatalf("dead uses = %d before anyone presented a dead token", s.DeadRefreshTokenUses())
	}
	if r := refresh(t, s, old); r.code() != CodeBadRefreshToken || s.DeadRefreshTokenUses() != 1 {
		t.Fatalf("retry with the old token: %s, dead uses %d", r.raw, s.DeadRefreshTokenUses())
	}

	// A short hold delivers the real answer.
	cur := s.CurrentRefreshToken(testClient, testCompany)
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultHold, Delay: time.Millisecond})
	if r := refresh(t, s, cur); r.status != 200 || r.body["refresh_token"] != s.CurrentRefreshToken(testClient, testCompany) {
		t.Fatalf("short hold: %d %s", r.status, r.raw)
	}
}

func TestFaultWrongTypes(t *testing.T) {
	s := newSim(t, Options{Rotation: RotationRotate})
	old := s.NewRefreshToken(testClient, testCompany)
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultWrongTypes})
	r := refresh(t, s, old)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if _, ok := r.body["scope"].([]any); !ok {
		t.Errorf("scope not an array: %s", r.raw)
	}
	if _, ok := r.body["token_type"].(float64); !ok {
		t.Errorf("token_type not a number: %s", r.raw)
	}
	if _, ok := r.body["geolocation"].(map[string]any); !ok {
		t.Errorf("geolocation not an object: %s", r.raw)
	}
	if v, ok := r.body["expires_in"].(string); !ok || v == "3600" {
		t.Errorf("expires_in not a non-numeric string: %s", r.raw)
	}
	// Processed for real: the answer's refresh token is the current one.
	if cur := s.CurrentRefreshToken(testClient, testCompany); cur == old || r.body["refresh_token"] != cur {
		t.Fatalf("refresh_token %v, current %s", r.body["refresh_token"], cur)
	}

	cur := s.CurrentRefreshToken(testClient, testCompany)
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultWrongTypes, Fields: []string{"refresh_expires_in", "access_token"}})
	r = refresh(t, s, cur)
	if _, ok := r.body["refresh_expires_in"].(string); !ok {
		t.Errorf("refresh_expires_in not a string: %s", r.raw)
	}
	if _, ok := r.body["access_token"].(float64); !ok {
		t.Errorf("access_token not a number: %s", r.raw)
	}
	if _, ok := r.body["scope"].(string); !ok {
		t.Errorf("scope garbled though not named: %s", r.raw)
	}

	// A refusal passes unchanged.
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultWrongTypes})
	wantOAuthError(t, refresh(t, s, "unknown"), 400, "invalid_grant", CodeBadRefreshToken)
}

func TestFaultTruncate(t *testing.T) {
	s := newSim(t, Options{Rotation: RotationRotate})
	old := s.NewRefreshToken(testClient, testCompany)
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultTruncate, TruncateAt: 20})
	r := refresh(t, s, old)
	if r.status != 200 || len(r.raw) != 20 || json.Valid(r.raw) {
		t.Fatalf("%d %q", r.status, r.raw)
	}
	if s.RefreshTokenValid(old) || s.CurrentRefreshToken(testClient, testCompany) == "" {
		t.Fatal("truncated answer did not rotate the token")
	}
	// Default: half the body.
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultTruncate})
	r = refresh(t, s, s.CurrentRefreshToken(testClient, testCompany))
	if r.status != 200 || len(r.raw) < 100 || json.Valid(r.raw) {
		t.Fatalf("default truncate: %d %d bytes", r.status, len(r.raw))
	}
}

// Every code of Concur's table can be answered in Concur's exact shape (11.7).
func TestFaultOAuthErrorEveryCode(t *testing.T) {
	s := newSim(t, Options{})
	tok := s.NewRefreshToken(testClient, testCompany)
	for _, row := range concur.OAuthCodes() {
		s.InjectFault(EndpointToken, 1, Fault{Kind: FaultOAuthError, Code: row.Code})
		r := refresh(t, s, tok)
		status := 400
		if row.Code == CodeCompanyNotEnabled {
			status = 403
		}
		wantOAuthError(t, r, status, row.Error, row.Code)
		keys := make([]string, 0, len(r.body))
		for k := range r.body {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := "code,error,error_description"
		if row.Code == CodeWrongDataCenter || row.Code == CodeBadRefreshToken {
			want = "code,concur-correlationid,error,error_description,geolocation"
			if r.body["geolocation"] != s.URL || r.body["concur-correlationid"] != r.header.Get("Concur-Correlationid") {
				t.Errorf("code %d: %s", row.Code, r.raw)
			}
		}
		if strings.Join(keys, ",") != want || r.body["error_description"] != row.Description {
			t.Errorf("code %d body %s", row.Code, r.raw)
		}
		if s.ErrorCount(row.Code) < 1 {
			t.Errorf("code %d not counted", row.Code)
		}
	}
	if !s.RefreshTokenValid(tok) {
		t.Fatal("an injected error consumed the token")
	}
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultOAuthError, Code: 108, Status: 403, Geolocation: "https://eu2.api.concursolutions.com"})
	if r := refresh(t, s, tok); r.status != 403 || r.body["geolocation"] != "https://eu2.api.concursolutions.com" {
		t.Fatalf("108 as 403: %d %s", r.status, r.raw)
	}
	for _, bad := range []Fault{{Kind: FaultOAuthError, Code: 999}, {Kind: FaultOAuthError, Code: 108, Status: 200}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("InjectFault(%+v) did not panic", bad)
				}
			}()
			s.InjectFault(EndpointToken, 1, bad)
		}()
	}
}

func TestDeadRefreshTokenUses(t *testing.T) {
	s := newSim(t, Options{Rotation: RotationRotate})
	old := s.NewRefreshToken(testClient, testCompany)
	r := refresh(t, s, old)
	next := r.body["refresh_token"].(string)
	if s.DeadRefreshTokenUses() != 0 {
		t.Fatal("a live token counted as dead")
	}
	refresh(t, s, old) // rotated away
	refresh(t, s, "never-issued")
	if n := s.DeadRefreshTokenUses(); n != 1 {
		t.Fatalf("dead uses = %d, want 1 (unknown tokens are not dead ones)", n)
	}
	// Presented while a fault answers without processing: still counted.
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultStatus, Status: 503})
	refresh(t, s, old)
	s.RevokeConnection(testClient, testCompany)
	refresh(t, s, next)
	if n, st := s.DeadRefreshTokenUses(), s.Stats(); n != 3 || st.DeadRefreshTokenPresented != 3 {
		t.Fatalf("dead uses = %d, stats %+v", n, st)
	}
	s.ResetCounters()
	if s.DeadRefreshTokenUses() != 0 {
		t.Fatal("ResetCounters kept the dead count")
	}
}

// verifyRS256 checks a JWT against the simulator's JWKS.
func verifyRS256(t *testing.T, jwks map[string]any, jwt string) {
	t.Helper()
	keys := jwks["keys"].([]any)
	k := keys[0].(map[string]any)
	dec := base64.RawURLEncoding.DecodeString
	n, _ := dec(k["n"].(string))
	e, _ := dec(k["e"].(string))
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	parts := strings.Split(jwt, ".")
	sig, _ := dec(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	hdr, _ := dec(parts[0])
	if !strings.Contains(string(hdr), `"kid":"`+k["kid"].(string)+`"`) {
		t.Fatalf("header %s does not name kid %v", hdr, k["kid"])
	}
}

func TestIDTokenIsSignedAndNamesTheCompany(t *testing.T) {
	s := newSim(t, Options{})
	r := grant(t, s)
	jwks := get(t, s, "/oauth2/v0/jwks", "")
	if jwks.status != 200 || jwks.body["keys"] == nil {
		t.Fatalf("jwks: %d %s", jwks.status, jwks.raw)
	}
	for _, f := range []string{"id_token", "access_token"} {
		verifyRS256(t, jwks.body, r.body[f].(string))
	}
	claims, err := DecodeJWTClaims(r.body["id_token"].(string))
	if err != nil || claims["sub"] != testCompany || claims["aud"] != testClient {
		t.Fatalf("claims %v, %v", claims, err)
	}

	// The knob: later answers for the company name another sub.
	const other = "11111111-2222-4333-8444-555555555555"
	s.SetIDTokenSubject(testCompany, other)
	r = refresh(t, s, r.body["refresh_token"].(string))
	if claims, _ := DecodeJWTClaims(r.body["id_token"].(string)); claims["sub"] != other {
		t.Fatalf("sub = %v, want %s", claims["sub"], other)
	}
	if claims, _ := DecodeJWTClaims(r.body["access_token"].(string)); claims["sub"] != testCompany {
		t.Fatalf("access token sub changed too: %v", claims["sub"])
	}
	s.SetIDTokenSubject(testCompany, "")
	r = refresh(t, s, r.body["refresh_token"].(string))
	if claims, _ := DecodeJWTClaims(r.body["id_token"].(string)); claims["sub"] != testCompany {
		t.Fatalf("sub after reset = %v", claims["sub"])
	}
}

func TestDeprecationHeadersOnDemand(t *testing.T) {
	s := newSim(t, Options{})
	s.SetDeprecation(EndpointToken, "oauth2 v0 token is deprecated", "Wed, 30 Dec 2026 23:59:59 GMT")
	r := grant(t, s)
	if r.header.Get("X-Api-Warn") != "oauth2 v0 token is deprecated" || r.header.Get("Sunset") != "Wed, 30 Dec 2026 23:59:59 GMT" {
		t.Fatalf("headers %v", r.header)
	}
	// Errors and faults carry them too; other endpoints do not.
	s.InjectFault(EndpointToken, 1, Fault{Kind: FaultStatus, Status: 503})
	if h := refresh(t, s, "x").header; h.Get("X-Api-Warn") == "" {
		t.Errorf("fault answer without x-api-warn: %v", h)
	}
	if h := get(t, s, usersPath, r.body["access_token"].(string)).header; h.Get("X-Api-Warn") != "" || h.Get("Sunset") != "" {
		t.Errorf("users answer carries the token endpoint's headers: %v", h)
	}
	s.SetDeprecation(EndpointToken, "", "")
	if h := grant(t, s).header; h.Get("X-Api-Warn") != "" || h.Get("Sunset") != "" {
		t.Errorf("headers after switching off: %v", h)
	}
}

func TestAdminCustodyKnobs(t *testing.T) {
	s := newSim(t, Options{Rotation: RotationRotate})
	s.EnableAdmin(testClient, testCompany)
	post := func(path string, body any) reply {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+path, jsonBody(body))
		return do(t, s.Client(), req)
	}
	if r := post("/_sim/fault", map[string]any{"endpoint": "token", "kind": "oauth-error", "code": 999}); r.status != 400 ||
		!strings.Contains(string(r.raw), "999") {
		t.Fatalf("unknown code: %d %s", r.status, r.raw)
	}
	if r := post("/_sim/fault", map[string]any{"endpoint": "token", "kind": "oauth-error", "code": 108, "status": 401}); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	tok := s.NewRefreshToken(testClient, testCompany)
	wantOAuthError(t, refresh(t, s, tok), 401, "invalid_grant", 108)

	for _, f := range []map[string]any{
		{"endpoint": "token", "kind": "wrong-types", "fields": []string{"scope"}},
		{"endpoint": "token", "kind": "truncate", "truncate_at": 10},
		{"endpoint": "token", "kind": "hold", "delay_ms": 1},
	} {
		if r := post("/_sim/fault", f); r.status != 200 {
			t.Fatalf("%v: %d %s", f, r.status, r.raw)
		}
	}
	r := refresh(t, s, tok)
	if _, ok := r.body["scope"].([]any); !ok {
		t.Errorf("wrong-types via admin: %s", r.raw)
	}
	tok = r.body["refresh_token"].(string)
	if r := refresh(t, s, tok); len(r.raw) != 10 {
		t.Errorf("truncate via admin: %q", r.raw)
	}
	if r := refresh(t, s, s.CurrentRefreshToken(testClient, testCompany)); r.status != 200 {
		t.Errorf("hold via admin: %d", r.status)
	}

	refresh(t, s, tok) // rotated away by the truncated answer: dead
	st := get(t, s, "/_sim/stats", "")
	if st.body["dead_refresh_token_presented"] != float64(1) {
		t.Errorf("stats %s", st.raw)
	}

	const other = "11111111-2222-4333-8444-555555555555"
	if r := post("/_sim/id-token-subject", map[string]string{"sub": other}); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if claims, _ := DecodeJWTClaims(grant(t, s).body["id_token"].(string)); claims["sub"] != other {
		t.Errorf("sub %v", claims["sub"])
	}
	if r := post("/_sim/deprecation", map[string]string{"endpoint": "users", "warning": "v4 is deprecated"}); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if h := get(t, s, usersPath, "x").header; h.Get("X-Api-Warn") != "v4 is deprecated" {
		t.Errorf("users headers %v", h)
	}
	if r := post("/_sim/deprecation", map[string]string{"endpoint": "nope"}); r.status != 400 {
		t.Errorf("bad endpoint: %d", r.status)
	}
}

// Two grants in the same simulated second get different access tokens:
// RS256 (PKCS#1 v1.5) signatures are deterministic, so only the jti tells
// them apart. Without it, a rotate followed by a read saw "the old token".
func TestTokensOfTheSameSecondDiffer(t *testing.T) {
	s := newSim(t, Options{})
	first := grant(t, s)
	second := refresh(t, s, first.body["refresh_token"].(string))
	if first.body["access_token"] == second.body["access_token"] {
		t.Fatal("two grants in the same second returned the same access token")
	}
	if first.body["id_token"] == second.body["id_token"] {
		t.Fatal("two grants in the same second returned the same id token")
	}
}
