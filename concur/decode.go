package concur

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// defaultAccessTokenLifetime stands in for a missing or unusable expires_in:
// Concur documents one hour, and throwing away a response that consumed a
// request token or rotated the refresh token would be worse than guessing.
const defaultAccessTokenLifetime = time.Hour

// maxTextLen bounds the server-provided text kept in an *Error.
const maxTextLen = 512

// flexInt decodes a JSON number or a numeric string ("3600"); anything else
// (null, "", "abc", true) leaves it unset rather than failing the decode.
type flexInt struct {
	value int64
	set   bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	*f = flexInt{}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if json.Unmarshal(b, &s) != nil {
			return nil
		}
		b = []byte(strings.TrimSpace(s))
	}
	s := string(b)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*f = flexInt{value: n, set: true}
		return nil
	}
	// 3600.0 or 1.7e9: accept whole values in a sane range.
	if x, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(x, 0) && !math.IsNaN(x) &&
		math.Abs(x) < 1<<53 && x == math.Trunc(x) {
		*f = flexInt{value: int64(x), set: true}
	}
	return nil
}

type tokenResponse struct {
	AccessToken      string  `json:"access_token"`
	TokenType        string  `json:"token_type"`
	ExpiresIn        flexInt `json:"expires_in"`
	RefreshToken     string  `json:"refresh_token"`
	RefreshExpiresIn flexInt `json:"refresh_expires_in"`
	Geolocation      string  `json:"geolocation"`
	IDToken          string  `json:"id_token"`
	Scope            string  `json:"scope"`
}

// decodeTokenResponse decodes a 2xx token-endpoint body. presented is the
// refresh token sent with the request (zero for the password grant); it is
// kept when the response carries none. The error never quotes the body.
func decodeTokenResponse(body []byte, now time.Time, presented Secret) (*Token, error) {
	var r tokenResponse
	if err := json.Unmarshal(body, &r); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("malformed token response (invalid JSON at byte %d)", se.Offset)
		}
		// A type error names a field and a JSON type, never a value.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("malformed token response (field %q is a JSON %s)", te.Field, te.Value)
		}
		return nil, errors.New("malformed token response")
	}
	if r.AccessToken == "" {
		return nil, errors.New("token response has no access_token")
	}
	t := &Token{
		AccessToken:  NewSecret(r.AccessToken),
		TokenType:    r.TokenType,
		RefreshToken: presented,
		IDToken:      NewSecret(r.IDToken),
		Scope:        r.Scope,
	}
	lifetime := defaultAccessTokenLifetime
	// Up to ten years: anything longer is nonsense and would overflow Duration arithmetic.
	if r.ExpiresIn.set && r.ExpiresIn.value > 0 && r.ExpiresIn.value <= 10*365*24*3600 {
		lifetime = time.Duration(r.ExpiresIn.value) * time.Second
	}
	t.ExpiresAt = now.Add(lifetime)
	if r.RefreshToken != "" {
		t.RefreshToken = NewSecret(r.RefreshToken)
	}
	// refresh_expires_in is absolute Unix seconds; keep plausible values only
	// (after 1970, before year 10000).
	if r.RefreshExpiresIn.set && r.RefreshExpiresIn.value > 0 && r.RefreshExpiresIn.value < 253402300800 {
		t.RefreshExpiresAt = time.Unix(r.RefreshExpiresIn.value, 0).UTC()
	}
	// Never discard a good token over its geolocation: the caller keeps its
	// previous base URL when this is "".
	if g, err := NormalizeBaseURL(r.Geolocation); err == nil {
		t.Geolocation = g
	} else if strings.TrimSpace(r.Geolocation) != "" {
		t.UnusableGeolocation = cleanText(r.Geolocation)
	}
	return t, nil
}

type oauthErrorBody struct {
	Error         json.RawMessage `json:"error"`
	Description   string          `json:"error_description"`
	Code          flexInt         `json:"code"`
	Geolocation   string          `json:"geolocation"`
	CorrelationID string          `json:"concur-correlationid"`
}

// Concur codes that need an operator: bad credentials, disabled or unknown
// client/company/principal, disallowed grant, bad or expired refresh token.
func permanentOAuthCode(code int64) bool {
	switch code {
	case 5, 10, 11, 12, 13, 14, 20, 53, 59, 60, 61, 64, 107, 108, 115, 120, 123, 136:
		return true
	}
	return false
}

// codeMaintenance is "Company undergoing scheduled maintenance": it passes.
const codeMaintenance = 134

// codeWrongDataCenter is "user lives elsewhere" with a geolocation to retry at.
const codeWrongDataCenter = 16

// decodeOAuthError turns a non-2xx token-endpoint answer into an *Error. The
// body may be anything (HTML from a proxy, empty, truncated): the status
// alone then decides the class.
func decodeOAuthError(status int, header http.Header, body []byte) *Error {
	e := &Error{StatusCode: status, CorrelationID: cleanText(header.Get("concur-correlationid"))}
	var b oauthErrorBody
	if json.Unmarshal(body, &b) == nil {
		e.ErrorCode = cleanText(jsonText(b.Error))
		e.Description = cleanText(b.Description)
		if b.Code.set && b.Code.value > 0 && b.Code.value <= math.MaxInt32 {
			e.Code = int(b.Code.value)
		}
		e.Geolocation = cleanText(b.Geolocation)
		if e.CorrelationID == "" {
			e.CorrelationID = cleanText(b.CorrelationID)
		}
	}
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
		e.Class = ClassTransient
	case e.Code == codeWrongDataCenter:
		e.Class = ClassRedirect
	case e.Code == codeMaintenance:
		e.Class = ClassTransient
	case permanentOAuthCode(int64(e.Code)):
		e.Class = ClassPermanent
	case status >= 300 && status < 500:
		e.Class = ClassPermanent
	default:
		// 1xx or some other oddity: nothing says retrying would fail.
		e.Class = ClassTransient
	}
	return e
}

// jsonText renders a JSON value that should be a string (OAuth2 `error`) but
// is an object in some gateway answers ({"id":..,"message":..}).
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return strings.TrimSpace(obj.ID + " " + obj.Message)
	}
	return ""
}

type scimErrorBody struct {
	Status   flexInt `json:"status"`
	ScimType string  `json:"scimType"`
	Detail   string  `json:"detail"`
	Concur   struct {
		Messages []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"messages"`
	} `json:"urn:ietf:params:scim:api:messages:concur:2.0:Error"`
	// OAuth2-style and gateway-style fields, seen on app-mgmt and 401/429 answers.
	Error            json.RawMessage `json:"error"`
	ErrorDescription string          `json:"error_description"`
	Code             flexInt         `json:"code"`
	ErrorID          string          `json:"errorId"`
	ErrorMessage     string          `json:"errorMessage"`
	CorrelationID    string          `json:"concur-correlationid"`
}

// decodeSCIMError turns a non-2xx Identity (or app-mgmt) answer into an
// *Error: 401/403 unauthorized, 429/5xx/408 transient, 3xx permanent, other
// 4xx (400 bad filter, 404 unknown user, ...) invalid request.
func decodeSCIMError(status int, header http.Header, body []byte) *Error {
	e := &Error{StatusCode: status, CorrelationID: cleanText(header.Get("concur-correlationid"))}
	var b scimErrorBody
	if json.Unmarshal(body, &b) == nil {
		e.ErrorCode = firstNonEmpty(b.ScimType, jsonText(b.Error), b.ErrorID)
		var msgs []string
		for _, m := range b.Concur.Messages {
			if t := strings.TrimSpace(strings.TrimSpace(m.Code + " " + m.Message)); t != "" {
				msgs = append(msgs, t)
			}
		}
		e.Description = firstNonEmpty(b.Detail, strings.Join(msgs, "; "), b.ErrorDescription, b.ErrorMessage)
		if e.ErrorCode == "" && len(b.Concur.Messages) > 0 {
			e.ErrorCode = b.Concur.Messages[0].Code
		}
		e.ErrorCode, e.Description = cleanText(e.ErrorCode), cleanText(e.Description)
		if b.Code.set && b.Code.value > 0 && b.Code.value <= math.MaxInt32 {
			e.Code = int(b.Code.value)
		}
		if e.CorrelationID == "" {
			e.CorrelationID = cleanText(b.CorrelationID)
		}
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Class = ClassUnauthorized
	case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
		e.Class = ClassTransient
	case status >= 400:
		e.Class = ClassInvalidRequest
	case status >= 300:
		e.Class = ClassPermanent
	default:
		e.Class = ClassTransient
	}
	return e
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

// cleanText makes server-provided text safe to print on one log line:
// valid UTF-8, no control characters, bounded length.
func cleanText(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n >= maxTextLen {
			b.WriteString("...")
			break
		}
		switch {
		case r == utf8.RuneError:
			b.WriteRune('?')
		case unicode.IsControl(r):
			b.WriteRune(' ')
		default:
			b.WriteRune(r)
		}
		n++
	}
	return b.String()
}
