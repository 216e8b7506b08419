package concur

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Class says what a caller should do about an error.
type Class int

const (
	// ClassTransient: try again later (5xx, 429, timeouts, resets, garbled replies).
	ClassTransient Class = iota
	// ClassPermanent: trying again within this call cannot help (a coded
	// refusal, an uncoded 4xx, a 3xx, a host off the allow-list). Whether an
	// operator must act is RefusedForGood's question, not this class's.
	ClassPermanent
	// ClassRedirect: code 16, the company lives at Error.Geolocation.
	ClassRedirect
	// ClassUnauthorized: an API (not the token endpoint) refused the bearer
	// token with 401 or 403; refresh the token once and retry once.
	ClassUnauthorized
	// ClassInvalidRequest: the request itself was wrong (bad id, unknown
	// user, bad filter): the caller's mistake, not Concur's and not ours.
	ClassInvalidRequest
	// ClassGrantOutcomeUnknown: the token endpoint answered 2xx, so the
	// grant happened (a request token consumed, a refresh token perhaps
	// rotated), but the body was unusable (cut off, not JSON, not an object,
	// neither access_token nor refresh_token). The grant is never re-sent
	// within the call; the caller decides what the old token is worth now.
	ClassGrantOutcomeUnknown
)

func (c Class) String() string {
	switch c {
	case ClassTransient:
		return "transient"
	case ClassPermanent:
		return "permanent"
	case ClassRedirect:
		return "redirect"
	case ClassUnauthorized:
		return "unauthorized"
	case ClassInvalidRequest:
		return "invalid_request"
	case ClassGrantOutcomeUnknown:
		return "grant_outcome_unknown"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Error is a failed Concur call. It never holds a credential: only what
// Concur said about the failure and how it was classified.
type Error struct {
	// Op names the call: "password grant", "refresh grant", "get user", ...
	Op string
	// StatusCode is the HTTP status; 0 when no response arrived.
	StatusCode int
	// ErrorCode is OAuth2 `error` or SCIM `scimType`.
	ErrorCode string
	// Description is OAuth2 `error_description` or SCIM `detail`.
	Description string
	// Code is Concur's numeric `code` (0 when absent).
	Code int
	// CorrelationID is the concur-correlationid response header (or body field).
	CorrelationID string
	// Geolocation is the host named by a code-16 (wrong data centre) answer.
	Geolocation string
	// RetryAfter is the Retry-After the last response asked for; HasRetryAfter
	// tells "0" apart from absent.
	RetryAfter    time.Duration
	HasRetryAfter bool
	Class         Class
	// Err is the underlying transport or decoding error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("concur: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	switch {
	case e.StatusCode != 0:
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	case e.Class == ClassTransient:
		b.WriteString("no response")
	default:
		// Refused before sending: bad input or a host off the allow-list.
		b.WriteString("not sent")
	}
	if e.ErrorCode != "" {
		fmt.Fprintf(&b, " %s", e.ErrorCode)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, " (code %d)", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %s", e.Description)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.CorrelationID != "" {
		fmt.Fprintf(&b, " [correlation id %s]", e.CorrelationID)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of a Concur error; errors that are not *Error
// (context cancellation, say) count as transient.
func ClassOf(err error) Class {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Class
	}
	return ClassTransient
}

// IsPermanent reports whether err needs an operator (re-bootstrap, new credentials).
func IsPermanent(err error) bool { return err != nil && ClassOf(err) == ClassPermanent }

// IsGrantOutcomeUnknown reports whether a token grant got a 2xx whose body
// could not be used (see ClassGrantOutcomeUnknown).
func IsGrantOutcomeUnknown(err error) bool {
	return err != nil && ClassOf(err) == ClassGrantOutcomeUnknown
}

// IsUnauthorized reports whether an API refused the bearer token (401/403).
func IsUnauthorized(err error) bool { return err != nil && ClassOf(err) == ClassUnauthorized }
