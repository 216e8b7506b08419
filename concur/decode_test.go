package concur

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestDecodeTokenResponse(t *testing.T) {
	presented := NewSecret("presented-refresh")
	tests := []struct {
		name          string
		body          string
		wantErr       string
		wantExpires   time.Duration
		wantRefresh   string
		wantRefreshAt time.Time
		wantGeo       string
	}{
		{
			name:          "live shape, numbers",
			body:          `{"expires_in":3600,"scope":"openid","token_type":"Bearer","access_token":"AT","refresh_token":"RT2","refresh_expires_in":1703696549,"geolocation":"https://us2.api.concursolutions.com","id_token":"ID"}`,
			wantExpires:   time.Hour,
			wantRefresh:   "RT2",
			wantRefreshAt: time.Unix(1703696549, 0).UTC(),
			wantGeo:       "https://us2.api.concursolutions.com",
		},
		{
			name:          "reference shape, strings",
			body:          `{"expires_in":"1800","access_token":"AT","refresh_token":"RT2","refresh_expires_in":"1703696549"}`,
			wantExpires:   30 * time.Minute,
			wantRefresh:   "RT2",
			wantRefreshAt: time.Unix(1703696549, 0).UTC(),
		},
		{
			name:        "absent refresh_token keeps the presented one, absent refresh_expires_in is zero",
			body:        `{"expires_in":3600,"access_token":"AT"}`,
			wantExpires: time.Hour,
			wantRefresh: "presented-refresh",
		},
		{
			name:        "empty refresh_token keeps the presented one",
			body:        `{"expires_in":3600,"access_token":"AT","refresh_token":""}`,
			wantExpires: time.Hour,
			wantRefresh: "presented-refresh",
		},
		{
			name:          "float and padded string",
			body:          `{"expires_in":3600.0,"access_token":"AT","refresh_expires_in":" 1703696549 "}`,
			wantExpires:   time.Hour,
			wantRefresh:   "presented-refresh",
			wantRefreshAt: time.Unix(1703696549, 0).UTC(),
		},
		{
			name:        "junk expires_in falls back to the documented hour",
			body:        `{"expires_in":"soon","access_token":"AT","refresh_expires_in":true}`,
			wantExpires: time.Hour,
			wantRefresh: "presented-refresh",
		},
		{
			name:        "negative expires_in falls back",
			body:        `{"expires_in":-5,"access_token":"AT","refresh_expires_in":-1}`,
			wantExpires: time.Hour,
			wantRefresh: "presented-refresh",
		},
		{
			name:        "geolocation with trailing space",
			body:        `{"access_token":"AT","geolocation":"https://us.api.concursolutions.com "}`,
			wantExpires: time.Hour, wantRefresh: "presented-refresh",
			wantGeo: "https://us.api.concursolutions.com",
		},
		{
			name:        "geolocation with capitals",
			body:        `{"access_token":"AT","geolocation":"HTTPS://us.api.Concursolutions.com"}`,
			wantExpires: time.Hour, wantRefresh: "presented-refresh",
			wantGeo: "https://us.api.concursolutions.com",
		},
		{
			name:        "geolocation as full token URL",
			body:        `{"access_token":"AT","geolocation":"https://us.api.concursolutions.com/oauth2/v0/token"}`,
			wantExpires: time.Hour, wantRefresh: "presented-refresh",
			wantGeo: "https://us.api.concursolutions.com",
		},
		{
			name:        "unparseable geolocation does not discard the token",
			body:        `{"access_token":"AT","geolocation":"us2 please"}`,
			wantExpires: time.Hour, wantRefresh: "presented-refresh",
		},
		{
			name:        "geolocation of the wrong type does not discard the token either",
			body:        `{"access_token":"AT","geolocation":"ftp://x.concursolutions.com"}`,
			wantExpires: time.Hour, wantRefresh: "presented-refresh",
		},
		{name: "neither token", body: `{"token_type":"Bearer","expires_in":3600}`, wantErr: "neither access_token nor refresh_token"},
		{name: "truncated", body: `{"access_token":"AT-SECRET-VALUE","refr`, wantErr: "malformed"},
		{name: "not an object", body: `[1,2]`, wantErr: "malformed"},
		{name: "a JSON string", body: `"AT-SECRET-VALUE"`, wantErr: "malformed"},
		{name: "null", body: `null`, wantErr: "malformed"},
		{name: "empty", body: ``, wantErr: "malformed"},
		{name: "access_token wrong type and no refresh token", body: `{"access_token":12}`, wantErr: "neither"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := decodeTokenResponse([]byte(tt.body), testNow, presented)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "AT-SECRET-VALUE") {
					t.Fatalf("error quotes the body: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken.Reveal() != "AT" {
				t.Errorf("access token = %q", tok.AccessToken.Reveal())
			}
			if got := tok.ExpiresAt.Sub(testNow); got != tt.wantExpires {
				t.Errorf("expires in %s, want %s", got, tt.wantExpires)
			}
			if tok.RefreshToken.Reveal() != tt.wantRefresh {
				t.Errorf("refresh token = %q, want %q", tok.RefreshToken.Reveal(), tt.wantRefresh)
			}
			if !tok.RefreshExpiresAt.Equal(tt.wantRefreshAt) {
				t.Errorf("refresh expires at %s, want %s", tok.RefreshExpiresAt, tt.wantRefreshAt)
			}
			if tok.Geolocation != tt.wantGeo {
				t.Errorf("geolocation = %q, want %q", tok.Geolocation, tt.wantGeo)
			}
		})
	}
}

// A 2xx means the grant happened: whatever the body carries that matters
// (refresh token, its expiry, geolocation) is kept even when other fields
// are of the wrong type or the access token is missing (issue 10.3).
func TestDecodeTokenResponseKeepsWhatMatters(t *testing.T) {
	presented := NewSecret("presented-refresh")
	idToken := testJWT(`{"sub":"aa076ada-80a9-4f57-8e98-9300b1c3171d","concur.type":"company"}`)
	tests := []struct {
		name         string
		body         string
		wantAccess   string
		wantRefresh  string
		wantGeo      string
		wantSubject  string
		wantWarnings []string // field names, in order
	}{
		{
			name:        "only a refresh token",
			body:        `{"refresh_token":"RT2","refresh_expires_in":1703696549,"geolocation":"https://eu2.api.concursolutions.com"}`,
			wantRefresh: "RT2", wantGeo: "https://eu2.api.concursolutions.com",
		},
		{
			name:        "access_token of the wrong type",
			body:        `{"access_token":{"v":1},"refresh_token":"RT2","refresh_expires_in":1703696549}`,
			wantRefresh: "RT2", wantWarnings: []string{"access_token"},
		},
		{
			name:       "optional fields of the wrong types",
			body:       `{"access_token":"AT","refresh_token":"RT2","refresh_expires_in":1703696549,"scope":["openid"],"token_type":7,"geolocation":{"url":"x"},"expires_in":"an hour","id_token":false}`,
			wantAccess: "AT", wantRefresh: "RT2",
			wantWarnings: []string{"expires_in", "geolocation", "id_token", "scope", "token_type"},
		},
		{
			name:        "refresh_token of the wrong type keeps the presented one",
			body:        `{"access_token":"AT","refresh_token":42,"refresh_expires_in":"1703696549"}`,
			wantAccess:  "AT",
			wantRefresh: "presented-refresh", wantWarnings: []string{"refresh_token"},
		},
		{
			name:        "nulls are absent, not wrong",
			body:        `{"access_token":"AT","refresh_token":null,"scope":null,"id_token":null,"refresh_expires_in":1703696549}`,
			wantAccess:  "AT",
			wantRefresh: "presented-refresh",
		},
		{
			name:        "id_token names the company",
			body:        `{"access_token":"AT","refresh_token":"RT2","refresh_expires_in":1703696549,"id_token":"` + idToken + `"}`,
			wantAccess:  "AT",
			wantRefresh: "RT2", wantSubject: "aa076ada-80a9-4f57-8e98-9300b1c3171d",
		},
		{
			name:        "unreadable id_token is a warning",
			body:        `{"access_token":"AT","refresh_token":"RT2","refresh_expires_in":1703696549,"id_token":"not-a-jwt"}`,
			wantAccess:  "AT",
			wantRefresh: "RT2", wantWarnings: []string{"id_token"},
		},
		{
			name:        "id_token without sub is a warning",
			body:        `{"access_token":"AT","refresh_token":"RT2","refresh_expires_in":1703696549,"id_token":"` + testJWT(`{"iss":"x"}`) + `"}`,
			wantAccess:  "AT",
			wantRefresh: "RT2", wantWarnings: []string{"id_token"},
		},
		{
			name:        "out-of-range refresh_expires_in is a warning",
			body:        `{"access_token":"AT","refresh_token":"RT2","refresh_expires_in":-1}`,
			wantAccess:  "AT",
			wantRefresh: "RT2", wantWarnings: []string{"refresh_expires_in"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := decodeTokenResponse([]byte(tt.body), testNow, presented)
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken.Reveal() != tt.wantAccess || tok.RefreshToken.Reveal() != tt.wantRefresh {
				t.Errorf("access %q refresh %q, want %q %q", tok.AccessToken.Reveal(), tok.RefreshToken.Reveal(), tt.wantAccess, tt.wantRefresh)
			}
			if strings.Contains(tt.body, "1703696549") && !tok.RefreshExpiresAt.Equal(time.Unix(1703696549, 0)) {
				t.Errorf("refresh expiry lost: %s", tok.RefreshExpiresAt)
			}
			if (tt.wantAccess == "") != tok.ExpiresAt.IsZero() {
				t.Errorf("ExpiresAt %s with access token %q", tok.ExpiresAt, tt.wantAccess)
			}
			if tok.Geolocation != tt.wantGeo || tok.Subject != tt.wantSubject {
				t.Errorf("geolocation %q subject %q", tok.Geolocation, tok.Subject)
			}
			var fields []string
			for _, w := range tok.Warnings {
				name, _, _ := strings.Cut(w, ":")
				fields = append(fields, name)
				for _, v := range []string{"AT", "RT2", "openid", "an hour", "not-a-jwt"} {
					if strings.Contains(w, `"`+v) || strings.Contains(w, v+`"`) {
						t.Errorf("warning %q quotes a value", w)
					}
				}
			}
			sort.Strings(fields)
			if strings.Join(fields, ",") != strings.Join(tt.wantWarnings, ",") {
				t.Errorf("warnings %q, want fields %q", tok.Warnings, tt.wantWarnings)
			}
		})
	}
}

// testJWT is an unsigned-looking JWT with the given claims.
func testJWT(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc([]byte(claims)) + "." + enc([]byte("sig"))
}

func TestDecodeOAuthError(t *testing.T) {
	h := http.Header{}
	h.Set("Concur-Correlationid", "cid-1")
	tests := []struct {
		name      string
		status    int
		body      string
		wantClass Class
		wantCode  int
		wantGeo   string
	}{
		{"108 bad refresh token", 400, `{"error":"invalid_grant","error_description":"bad or expired refresh token","code":108}`, ClassPermanent, 108, ""},
		{"108 as 403 with geolocation", 403, `{"error":"invalid_grant","code":108,"geolocation":"https://us2.api.concursolutions.com"}`, ClassPermanent, 108, "https://us2.api.concursolutions.com"},
		{"5 bad credentials, code as string", 400, `{"error":"invalid_grant","error_description":"Incorrect Credentials. Please Retry","code":"5"}`, ClassPermanent, 5, ""},
		{"59 client disabled", 400, `{"error":"access_denied","code":59}`, ClassPermanent, 59, ""},
		{"64 bad secret", 401, `{"error":"invalid_client","code":64}`, ClassPermanent, 64, ""},
		{"16 redirect", 400, `{"error":"invalid_request","error_description":"user lives elsewhere","code":16,"geolocation":"https://eu2.api.concursolutions.com"}`, ClassRedirect, 16, "https://eu2.api.concursolutions.com"},
		{"134 maintenance passes", 400, `{"error":"invalid_request","code":134}`, ClassTransient, 134, ""},
		{"unknown 4xx code is permanent", 400, `{"error":"invalid_request","code":999}`, ClassPermanent, 999, ""},
		{"134 as 503 stays transient", 503, `{"error":"invalid_request","code":134}`, ClassTransient, 134, ""},
		{"429 with gateway body", 429, `{"httpStatus":"429 - Too Many Requests","error":{"id":"security.rate.limit.reached","message":"Too many requests"}}`, ClassTransient, 0, ""},
		{"500 html", 500, `<html>oops</html>`, ClassTransient, 0, ""},
		{"503 empty", 503, ``, ClassTransient, 0, ""},
		{"404 html", 404, `<html>nope</html>`, ClassPermanent, 0, ""},
		{"302", 302, ``, ClassPermanent, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := decodeOAuthError(tt.status, h, []byte(tt.body))
			if e.Class != tt.wantClass || e.Code != tt.wantCode || e.Geolocation != tt.wantGeo || e.StatusCode != tt.status {
				t.Fatalf("got %+v", e)
			}
			if e.CorrelationID != "cid-1" {
				t.Errorf("correlation id = %q", e.CorrelationID)
			}
		})
	}

	// Correlation id from the body when the header is absent.
	e := decodeOAuthError(400, http.Header{}, []byte(`{"error":"invalid_grant","concur-correlationid":"body-cid","code":108}`))
	if e.CorrelationID != "body-cid" {
		t.Errorf("correlation id = %q, want body-cid", e.CorrelationID)
	}
	if e.ErrorCode != "invalid_grant" {
		t.Errorf("error code = %q", e.ErrorCode)
	}
}

func TestDecodeSCIMError(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		wantClass  Class
		wantCode   string
		wantDetail string
	}{
		{"400 invalid filter", 400, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error","urn:ietf:params:scim:api:messages:concur:2.0:Error"],"status":"400","scimType":"invalidValue","detail":"bad filter","urn:ietf:params:scim:api:messages:concur:2.0:Error":{"messages":[{"code":"INVALID_INPUT","message":"Invalid attribute path [:test]","type":"error"}]}}`, ClassInvalidRequest, "invalidValue", "bad filter"},
		{"400 messages only", 400, `{"status":"400","urn:ietf:params:scim:api:messages:concur:2.0:Error":{"messages":[{"code":"INVALID_INPUT","message":"Invalid attribute path","type":"error"}]}}`, ClassInvalidRequest, "INVALID_INPUT", "INVALID_INPUT Invalid attribute path"},
		{"404 unknown user, numeric status", 404, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":404,"detail":"User not found"}`, ClassInvalidRequest, "", "User not found"},
		{"401 gateway", 401, `{"timestamp":1,"httpStatus":"401 - Unauthorized","errorMessage":"expired","errorId":"UNAUTHORIZED"}`, ClassUnauthorized, "UNAUTHORIZED", "expired"},
		{"403 html", 403, `<html>forbidden</html>`, ClassUnauthorized, "", ""},
		{"429", 429, `{}`, ClassTransient, "", ""},
		{"502", 502, `bad gateway`, ClassTransient, "", ""},
		{"301", 301, ``, ClassPermanent, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := decodeSCIMError(tt.status, http.Header{}, []byte(tt.body))
			if e.Class != tt.wantClass || e.ErrorCode != tt.wantCode || e.Description != tt.wantDetail {
				t.Fatalf("got %+v (class %s)", e, e.Class)
			}
		})
	}
}

func TestCleanTextBoundsServerText(t *testing.T) {
	long := strings.Repeat("x", 5000) + "\n\x00"
	e := decodeOAuthError(400, http.Header{}, []byte(`{"error":"a\nb","error_description":"`+long+`"}`))
	scrubAndBound(e, nil)
	if len(e.Description) > maxTextLen+10 || strings.ContainsAny(e.Description+e.ErrorCode, "\n\x00") {
		t.Fatalf("description not cleaned: %d bytes, code %q", len(e.Description), e.ErrorCode)
	}
}

// printings covers every way a value tends to reach a log or an API response.
func printings(v any) []string {
	j, _ := json.Marshal(v)
	return []string{
		fmt.Sprint(v), fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v),
		fmt.Sprintf("%s", v), fmt.Sprintf("%q", v), string(j),
	}
}

func TestTokenNeverPrintsSecrets(t *testing.T) {
	tok, err := decodeTokenResponse([]byte(`{"access_token":"AT-SECRET","refresh_token":"RT-SECRET","id_token":"ID-SECRET","expires_in":3600}`), testNow, Secret{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{tok, *tok} {
		for _, s := range printings(v) {
			for _, secret := range []string{"AT-SECRET", "RT-SECRET", "ID-SECRET"} {
				if strings.Contains(s, secret) {
					t.Fatalf("printed token contains %s: %s", secret, s)
				}
			}
		}
	}
}

func TestScrubSecretsFromErrors(t *testing.T) {
	e := decodeOAuthError(400, http.Header{}, []byte(`{"error":"invalid_grant","error_description":"refresh token RT-SECRET is unknown","code":108}`))
	scrubSecrets(e, []Secret{NewSecret("RT-SECRET")})
	for _, s := range append(printings(e), e.Error()) {
		if strings.Contains(s, "RT-SECRET") {
			t.Fatalf("error shows the secret: %s", s)
		}
	}
}

func TestUnusableGeolocationIsReported(t *testing.T) {
	tok, err := decodeTokenResponse([]byte(`{"access_token":"a","expires_in":3600,"geolocation":"http://127.0.0.1:1@localhost:2"}`), testNow, Secret{})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Geolocation != "" || tok.UnusableGeolocation != "http://127.0.0.1:1@localhost:2" {
		t.Errorf("geolocation %q unusable %q", tok.Geolocation, tok.UnusableGeolocation)
	}
	tok, _ = decodeTokenResponse([]byte(`{"access_token":"a","expires_in":3600,"geolocation":" https://US2.api.concursolutions.com "}`), testNow, Secret{})
	if tok.Geolocation != "https://us2.api.concursolutions.com" || tok.UnusableGeolocation != "" {
		t.Errorf("geolocation %q unusable %q", tok.Geolocation, tok.UnusableGeolocation)
	}
}
