package concur

import (
	"bytes"
	"encoding/base64"
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
			return nil //nolint:nilerr // not a string either: left unset, as documented above
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

// decodeTokenResponse decodes a 2xx token-endpoint body field by field, so
// that one odd field never costs the ones that matter: whatever refresh
// token, refresh expiry and geolocation the body carries are kept. presented
// is the refresh token sent with the request (zero for the password grant);
// it is kept when the response carries none. Optional fields of the wrong
// JSON type are ignored and named in Token.Warnings. It fails only when the
// body is not a JSON object or carries neither access_token nor
// refresh_token. Errors and warnings name fields, never values.
func decodeTokenResponse(body []byte, now time.Time, presented Secret) (*Token, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("malformed token response (invalid JSON at byte %d)", se.Offset)
		}
		return nil, errors.New("malformed token response (not a JSON object)")
	}
	d := &tokenDecoder{fields: fields}
	access, refresh := d.str("access_token"), d.str("refresh_token")
	if access == "" && refresh == "" {
		return nil, errors.New("token response has neither access_token nor refresh_token")
	}
	t := &Token{
		AccessToken:  NewSecret(access),
		TokenType:    d.str("token_type"),
		RefreshToken: presented,
		IDToken:      NewSecret(d.str("id_token")),
		Scope:        d.str("scope"),
	}
	if refresh != "" {
		t.RefreshToken = NewSecret(refresh)
	}
	lifetime := defaultAccessTokenLifetime
	// Up to ten years: anything longer is nonsense and would overflow Duration arithmetic.
	if n, ok := d.integer("expires_in", 1, 10*365*24*3600); ok {
		lifetime = time.Duration(n) * time.Second
	}
	if access != "" {
		t.ExpiresAt = now.Add(lifetime)
	}
	// refresh_expires_in is absolute Unix seconds; keep plausible values only
	// (after 1970, before year 10000).
	if n, ok := d.integer("refresh_expires_in", 1, 253402300799); ok {
		t.RefreshExpiresAt = time.Unix(n, 0).UTC()
	}
	// Never discard a good token over its geolocation: the caller keeps its
	// previous base URL when this is "".
	geo := d.str("geolocation")
	if g, err := NormalizeBaseURL(geo); err == nil {
		t.Geolocation = g
	} else if strings.TrimSpace(geo) != "" {
		t.UnusableGeolocation = cleanText(geo)
	}
	if !t.IDToken.IsZero() {
		sub, err := jwtSubject(t.IDToken.Reveal())
		if err != nil {
			d.warn("id_token: " + err.Error())
		}
		t.Subject = sub
	}
	t.Warnings = d.warnings
	return t, nil
}

// tokenDecoder reads single fields of a token response and collects a
// warning for each one it had to ignore.
type tokenDecoder struct {
	fields   map[string]json.RawMessage
	warnings []string
}

func (d *tokenDecoder) warn(w string) { d.warnings = append(d.warnings, w) }

// str returns a string field; absent and null are "", any other type is ""
// with a warning.
func (d *tokenDecoder) str(name string) string {
	raw, ok := d.fields[name]
	if !ok || isJSONNull(raw) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		d.warn(fmt.Sprintf("%s: a JSON %s, not a string; ignored", name, jsonKind(raw)))
		return ""
	}
	return s
}

// integer returns a whole number (JSON number or numeric string, as the docs
// and live answers disagree) within [lo, hi]; anything else present is
// ignored with a warning.
func (d *tokenDecoder) integer(name string, lo, hi int64) (int64, bool) {
	raw, ok := d.fields[name]
	if !ok || isJSONNull(raw) {
		return 0, false
	}
	var f flexInt
	_ = f.UnmarshalJSON(raw)
	switch {
	case !f.set:
		d.warn(fmt.Sprintf("%s: a JSON %s, not a whole number; ignored", name, jsonKind(raw)))
	case f.value < lo || f.value > hi:
		d.warn(name + ": out of range; ignored")
	default:
		return f.value, true
	}
	return 0, false
}

func isJSONNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// jsonKind names the JSON type of a value, for warnings that must not quote it.
func jsonKind(raw json.RawMessage) string {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// maxIDTokenBytes bounds the id_token whose claims are read.
const maxIDTokenBytes = 64 << 10

// jwtSubject reads the `sub` claim of a JWT without verifying its signature.
// That is sound here: the id_token arrives over TLS in the answer of the
// token endpoint we chose (allow-listed host), in the same body as the
// access and refresh tokens we trust anyway; verifying it against Concur's
// JWKS would add a network dependency and no protection. An error says why
// the claims could not be read, never what they hold.
func jwtSubject(jwt string) (string, error) {
	if len(jwt) > maxIDTokenBytes {
		return "", errors.New("too long to read; subject unknown")
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "", errors.New("not a JWT (header.payload.signature); subject unknown")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", errors.New("claims are not base64url; subject unknown")
	}
	var claims map[string]json.RawMessage
	if json.Unmarshal(payload, &claims) != nil || claims == nil {
		return "", errors.New("claims are not a JSON object; subject unknown")
	}
	raw, ok := claims["sub"]
	if !ok {
		return "", errors.New("no sub claim")
	}
	var sub string
	if json.Unmarshal(raw, &sub) != nil {
		return "", fmt.Errorf("sub claim is a JSON %s, not a string", jsonKind(raw))
	}
	return cleanText(sub), nil
}

type oauthErrorBody struct {
	Error         json.RawMessage `json:"error"`
	Description   string          `json:"error_description"`
	Code          flexInt         `json:"code"`
	Geolocation   string          `json:"geolocation"`
	CorrelationID string          `json:"concur-correlationid"`
}

// decodeOAuthError turns a non-2xx token-endpoint answer into an *Error. The
// body may be anything (HTML from a proxy, empty, truncated): the status
// alone then decides the class.
func decodeOAuthError(status int, header http.Header, body []byte) *Error {
	e := &Error{StatusCode: status, CorrelationID: sanitizeText(header.Get("concur-correlationid"))}
	var b oauthErrorBody
	if json.Unmarshal(body, &b) == nil {
		e.ErrorCode = sanitizeText(jsonText(b.Error))
		e.Description = sanitizeText(b.Description)
		if b.Code.set && b.Code.value > 0 && b.Code.value <= math.MaxInt32 {
			e.Code = int(b.Code.value)
		}
		e.Geolocation = sanitizeText(b.Geolocation)
		if e.CorrelationID == "" {
			e.CorrelationID = sanitizeText(b.CorrelationID)
		}
	}
	row, coded := oauthCodes[e.Code]
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
		e.Class = ClassTransient
	case coded && status >= 400:
		e.Class = row.Class
	case status >= 300 && status < 500:
		// Uncoded (or an unknown code): nothing more is known, so no retry
		// within the call; RefusedForGood is false for it.
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
	e := &Error{StatusCode: status, CorrelationID: sanitizeText(header.Get("concur-correlationid"))}
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
		e.ErrorCode, e.Description = sanitizeText(e.ErrorCode), sanitizeText(e.Description)
		if b.Code.set && b.Code.value > 0 && b.Code.value <= math.MaxInt32 {
			e.Code = int(b.Code.value)
		}
		if e.CorrelationID == "" {
			e.CorrelationID = sanitizeText(b.CorrelationID)
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
func cleanText(s string) string { return boundText(sanitizeText(s)) }

// sanitizeText is cleanText without the bound. Error text is bounded only
// once secrets are scrubbed out of it (see scrubAndBound): a cut through a
// credential the server echoed would leave its first part unrecognised.
func sanitizeText(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b.WriteRune('?')
		case unicode.IsControl(r):
			b.WriteRune(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// boundText keeps the first maxTextLen runes of s, marking a cut with "...".
func boundText(s string) string {
	n := 0
	for i := range s {
		if n == maxTextLen {
			return s[:i] + "..."
		}
		n++
	}
	return s
}
