package concur

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

// The codes of Concur's reference table (Authentication "Response Codes" for
// /token and /otp, and the company-auth codes 134-139), with what each must
// mean. Written out here rather than read from oauthCodes, so that a change
// to the table shows up as a failing row.
var wantCodes = map[int]struct {
	class   Class
	refused bool
}{
	5: {ClassPermanent, true}, 10: {ClassPermanent, true}, 11: {ClassPermanent, true},
	12: {ClassPermanent, true}, 13: {ClassPermanent, true}, 14: {ClassPermanent, true},
	16: {ClassRedirect, false}, 19: {ClassPermanent, true}, 20: {ClassPermanent, true},
	51: {ClassPermanent, false}, 52: {ClassPermanent, false}, 53: {ClassPermanent, true},
	54: {ClassPermanent, false}, 55: {ClassPermanent, false}, 56: {ClassPermanent, false},
	57: {ClassPermanent, false}, 58: {ClassPermanent, false}, 59: {ClassPermanent, true},
	60: {ClassPermanent, true}, 61: {ClassPermanent, true}, 62: {ClassPermanent, false},
	63: {ClassPermanent, false}, 64: {ClassPermanent, true}, 65: {ClassPermanent, false},
	80: {ClassPermanent, false}, 81: {ClassPermanent, false}, 82: {ClassPermanent, false},
	83: {ClassPermanent, false}, 84: {ClassPermanent, false}, 85: {ClassPermanent, false},
	100: {ClassPermanent, true}, 101: {ClassPermanent, false}, 102: {ClassPermanent, false},
	103: {ClassPermanent, false}, 104: {ClassPermanent, false}, 105: {ClassPermanent, true},
	106: {ClassPermanent, false}, 107: {ClassPermanent, true}, 108: {ClassPermanent, true},
	109: {ClassPermanent, false}, 115: {ClassPermanent, true}, 117: {ClassPermanent, false},
	118: {ClassPermanent, false}, 119: {ClassPermanent, false}, 120: {ClassPermanent, false},
	121: {ClassPermanent, false}, 122: {ClassPermanent, false}, 123: {ClassPermanent, true},
	134: {ClassTransient, false}, 135: {ClassPermanent, false}, 136: {ClassPermanent, true},
	139: {ClassPermanent, true},
}

func TestOAuthCodeTableCoversTheReference(t *testing.T) {
	rows := OAuthCodes()
	if len(rows) != len(wantCodes) {
		t.Errorf("table has %d codes, the reference %d", len(rows), len(wantCodes))
	}
	for i, r := range rows {
		if i > 0 && rows[i-1].Code >= r.Code {
			t.Errorf("OAuthCodes not in code order at %d", r.Code)
		}
		if r.Error == "" || r.Description == "" {
			t.Errorf("code %d lacks its error or description: %+v", r.Code, r)
		}
		if got, ok := LookupOAuthCode(r.Code); !ok || got != r {
			t.Errorf("LookupOAuthCode(%d) = %+v, %v", r.Code, got, ok)
		}
	}
	if _, ok := LookupOAuthCode(999); ok {
		t.Error("999 found in the table")
	}
}

// One subtest per code: Concur's exact body shape at 400 (and at 401/403,
// which the docs also list for coded errors) decodes to the expected class,
// and RefusedForGood says yes exactly for the refusals.
func TestEveryOAuthCodeIsClassified(t *testing.T) {
	for code, want := range wantCodes {
		row, ok := LookupOAuthCode(code)
		if !ok {
			t.Errorf("code %d missing from the table", code)
			continue
		}
		for _, status := range []int{400, 401, 403} {
			t.Run(fmt.Sprintf("%d/%d", code, status), func(t *testing.T) {
				body := fmt.Sprintf(`{"error":%q,"error_description":%q,"code":%d}`, row.Error, row.Description, code)
				e := decodeOAuthError(status, http.Header{}, []byte(body))
				e.Op = opRefreshGrant
				if e.Class != want.class || e.Code != code {
					t.Fatalf("class %s code %d, want %s", e.Class, e.Code, want.class)
				}
				if got := RefusedForGood(e); got != want.refused {
					t.Fatalf("RefusedForGood = %v, want %v", got, want.refused)
				}
				// Wrapped, as the backend hands it around.
				if got := RefusedForGood(fmt.Errorf("renewal: %w", e)); got != want.refused {
					t.Fatalf("wrapped: RefusedForGood = %v", got)
				}
			})
		}
	}
}

// What we cannot attribute to Concur never counts as a refusal (issue 10.6).
func TestRefusedForGoodOnlyForConcursCodedRefusals(t *testing.T) {
	decoded := func(status int, body string) error {
		return decodeOAuthError(status, http.Header{}, []byte(body))
	}
	notRefusals := map[string]error{
		"gateway 403 with HTML":     decoded(403, `<html><body>Forbidden</body></html>`),
		"gateway 404 empty":         decoded(404, ``),
		"401 without an OAuth body": decoded(401, ``),
		"401 gateway JSON":          decoded(401, `{"httpStatus":"401 - Unauthorized","errorId":"UNAUTHORIZED"}`),
		"302":                       decoded(302, ``),
		"code 16":                   decoded(400, `{"error":"invalid_request","code":16,"geolocation":"https://eu2.api.concursolutions.com"}`),
		"code 108 on a 500":         decoded(500, `{"error":"invalid_grant","code":108}`),
		"code 108 without error (not Concur's shape)": decoded(400, `{"code":108}`),
		"error without code":                          decoded(400, `{"error":"invalid_grant","error_description":"bad"}`),
		"unknown code":                                decoded(400, `{"error":"invalid_grant","code":999}`),
		"code 134 maintenance":                        decoded(400, `{"error":"invalid_request","code":134}`),
		"code 106 (our request's fault)":              decoded(400, `{"error":"invalid_request","code":106}`),
		"redirect that cannot be followed": redirectFailed(opRefreshGrant,
			&Error{StatusCode: 400, ErrorCode: "invalid_request", Code: CodeWrongDataCenter}, "x", errors.New("loop")),
		"host off the allow-list": &Error{Op: opRefreshGrant, Class: ClassPermanent, Err: errors.New("not allowed")},
		"grant outcome unknown":   &Error{Op: opRefreshGrant, StatusCode: 200, Class: ClassGrantOutcomeUnknown},
		"not a concur error":      errors.New("context deadline exceeded"),
		"nil":                     nil,
	}
	for name, err := range notRefusals {
		if RefusedForGood(err) {
			t.Errorf("%s: RefusedForGood = true", name)
		}
	}
	if !RefusedForGood(decoded(400, `{"error":"invalid_grant","error_description":"bad or expired refresh token","code":"108"}`)) {
		t.Error("code 108 as a string is still Concur's refusal")
	}
}

func TestGrantOutcomeUnknownClass(t *testing.T) {
	e := &Error{Op: opRefreshGrant, StatusCode: 200, CorrelationID: "cid-9", Class: ClassGrantOutcomeUnknown, Err: errors.New("x")}
	if ClassGrantOutcomeUnknown.String() != "grant_outcome_unknown" {
		t.Errorf("String = %q", ClassGrantOutcomeUnknown)
	}
	if !IsGrantOutcomeUnknown(fmt.Errorf("wrapped: %w", e)) || IsGrantOutcomeUnknown(nil) || IsPermanent(e) {
		t.Error("predicates disagree with the class")
	}
	if got := e.Error(); got != "concur: refresh grant: HTTP 200: x [correlation id cid-9]" {
		t.Errorf("Error() = %q", got)
	}
}
