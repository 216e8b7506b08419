package concur

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// Seeds beyond these live in testdata/fuzz/<FuzzName>/.

func FuzzDecodeTokenResponse(f *testing.F) {
	f.Add([]byte(`{"expires_in":3600,"scope":"openid","token_type":"Bearer","access_token":"eyJ.a.b","refresh_token":"r","refresh_expires_in":1703696549,"geolocation":"https://us2.api.concursolutions.com","id_token":"eyJ.c.d"}`))
	f.Add([]byte(`{"expires_in":"3600","access_token":"a","refresh_expires_in":"1703696549"}`))
	f.Add([]byte(`{"access_token":"a","geolocation":"https://us.api.Concursolutions.com/oauth2/v0/token "}`))
	f.Add([]byte(`{"access_token":"a","expires_in":1e300,"refresh_expires_in":-9223372036854775808}`))
	f.Add([]byte(`{"access_token":`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"refresh_token":"rotated-refresh","refresh_expires_in":"1703696549","scope":["openid"],"token_type":7}`))
	f.Add([]byte(`{"access_token":"a","geolocation":{"url":"x"},"id_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"}`))
	presented := NewSecret("presented-refresh-token")
	own := ownSource(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := decodeTokenResponse(body, testNow, presented)
		secrets, rawRefresh := bodyTokens(body, own)
		if err != nil {
			if tok != nil {
				t.Fatal("token and error both returned")
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q quotes a credential", err)
				}
			}
			return
		}
		checkFuzzedToken(t, tok, rawRefresh)
		checkTokenKeepsSecrets(t, tok, secrets)
	})
}

// ownSource is the text of the package's own code. Every message the decoder
// writes is made of its words (field names, fixed phrases), so a fuzzed
// credential found in it ("refres", "efresh") says nothing about a leak and
// is not looked for; real credentials are random.
func ownSource(f *testing.F) string {
	f.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		f.Fatal(err)
	}
	var src strings.Builder
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		src.Write(b)
	}
	return src.String()
}

// bodyTokens are the body's access and refresh tokens long enough to look
// for in output (and not words of the package's own code, own), and its
// refresh token ("" when absent or not a string).
func bodyTokens(body []byte, own string) (secrets []string, rawRefresh string) {
	var raw struct {
		AccessToken  any `json:"access_token"`
		RefreshToken any `json:"refresh_token"`
	}
	_ = json.Unmarshal(body, &raw)
	for _, v := range []any{raw.AccessToken, raw.RefreshToken} {
		if s, ok := v.(string); ok && len(s) >= 6 && !strings.Contains(own, s) {
			secrets = append(secrets, s)
		}
	}
	rawRefresh, _ = raw.RefreshToken.(string)
	return secrets, rawRefresh
}

// checkFuzzedToken: a decoded token is whole: expiry, refresh token, normalised geolocation.
func checkFuzzedToken(t *testing.T, tok *Token, rawRefresh string) {
	t.Helper()
	if tok.AccessToken.IsZero() && rawRefresh == "" {
		t.Fatal("token with neither an access token nor a refresh token from the body")
	}
	if tok.AccessToken.IsZero() != tok.ExpiresAt.IsZero() || (!tok.AccessToken.IsZero() && !tok.ExpiresAt.After(testNow)) {
		t.Fatalf("ExpiresAt %s not after now", tok.ExpiresAt)
	}
	if tok.RefreshToken.IsZero() {
		t.Fatal("refresh token lost")
	}
	if tok.Geolocation != "" {
		if g, err := NormalizeBaseURL(tok.Geolocation); err != nil || g != tok.Geolocation {
			t.Fatalf("geolocation %q not normalised (%q, %v)", tok.Geolocation, g, err)
		}
	}
}

// checkTokenKeepsSecrets: neither the token's warnings nor any printing of it shows a credential.
func checkTokenKeepsSecrets(t *testing.T, tok *Token, secrets []string) {
	t.Helper()
	for _, w := range tok.Warnings {
		for _, s := range secrets {
			if strings.Contains(w, s) {
				t.Fatalf("warning %q quotes a credential", w)
			}
		}
	}
	printed := fmt.Sprintf("%v %+v %#v", tok, *tok, tok)
	if j, err := json.Marshal(tok); err == nil {
		printed += string(j)
	}
	// What any token prints whatever its values: field names, zero values, the redaction mark.
	var zero Token
	shape := fmt.Sprintf("%v %+v %#v", &zero, zero, &zero) + redacted
	if j, err := json.Marshal(&zero); err == nil {
		shape += string(j)
	}
	for _, s := range secrets {
		if strings.Contains(printed, s) && !strings.Contains(shape, s) && !strings.Contains(tok.Scope+tok.TokenType+tok.Geolocation, s) {
			t.Fatalf("printed token shows a credential: %s", printed)
		}
	}
}

func FuzzDecodeOAuthError(f *testing.F) {
	f.Add(400, []byte(`{"error":"invalid_grant","error_description":"bad or expired refresh token","code":108}`))
	f.Add(400, []byte(`{"error":"invalid_request","error_description":"user lives elsewhere","code":"16","geolocation":"https://eu2.api.concursolutions.com"}`))
	f.Add(429, []byte(`{"httpStatus":"429 - Too Many Requests","error":{"id":"security.rate.limit.reached","message":"Too many requests"}}`))
	f.Add(503, []byte(`<html>unavailable</html>`))
	f.Add(401, []byte(`{"error":"invalid_client","code":64,"concur-correlationid":"abc"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := decodeOAuthError(status, http.Header{}, body)
		checkDecodedError(t, e, status)
		switch {
		case status == 429 || status >= 500:
			if e.Class != ClassTransient {
				t.Fatalf("status %d classed %s", status, e.Class)
			}
		case e.Class == ClassRedirect && e.Code != CodeWrongDataCenter:
			t.Fatalf("redirect class without code 16: %+v", e)
		}
	})
}

func FuzzDecodeSCIMError(f *testing.F) {
	f.Add(400, []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidFilter","detail":"bad","urn:ietf:params:scim:api:messages:concur:2.0:Error":{"messages":[{"code":"INVALID_INPUT","message":"m","type":"error"}]}}`))
	f.Add(404, []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"404","detail":"not found"}`))
	f.Add(401, []byte(`{"httpStatus":"401 - Unauthorized","errorMessage":"","errorId":"UNAUTHORIZED"}`))
	f.Add(500, []byte(``))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := decodeSCIMError(status, http.Header{}, body)
		checkDecodedError(t, e, status)
		if (status == 401 || status == 403) != (e.Class == ClassUnauthorized) {
			t.Fatalf("status %d classed %s", status, e.Class)
		}
		if e.Class == ClassRedirect {
			t.Fatal("SCIM errors are never redirects")
		}
	})
}

func checkDecodedError(t *testing.T, e *Error, status int) {
	t.Helper()
	if e == nil || e.StatusCode != status {
		t.Fatalf("got %+v for status %d", e, status)
	}
	scrubAndBound(e, nil) // as every error leaves the client
	for _, s := range []string{e.ErrorCode, e.Description, e.CorrelationID, e.Geolocation} {
		if !utf8.ValidString(s) || strings.ContainsAny(s, "\r\n\x00") || utf8.RuneCountInString(s) > maxTextLen+3 {
			t.Fatalf("unclean text %q", s)
		}
	}
	_ = e.Error()
}
