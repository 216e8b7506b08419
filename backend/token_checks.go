package backend

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// Checks of a 2xx token answer beyond its tokens (issue 10.3 and 11.5). The
// grant happened whatever they find: the refresh token Concur returned is
// always kept; what they decide is whether the access token is served.

// checkAnswer applies them to next, just built by withToken from tok; prev
// is the token state the grant started from (for the failure count).
func (co *company) checkAnswer(next *companyEntry, prev tokenEntry, tok *concur.Token) {
	t := &next.Token
	now := co.deps.now()
	log := co.deps.log()
	t.AnswerWarning = answerWarning(tok)
	if t.AnswerWarning != "" {
		// Field names and JSON types only, never a value (see concur.Token.Warnings).
		log.Warn("Concur's token answer had unusable fields; they were ignored", "company", co.name,
			"fields", strings.Join(tok.Warnings, "; "), "correlation_id", tok.CorrelationID)
	}
	switch {
	case subjectMismatch(tok, next.CompanyUUID):
		withhold(t, prev, now, backoff(prev.Failures+1, nil), fmt.Sprintf(
			"Concur's token answer (correlation id %s) names company %s, not the configured company_uuid %s: "+
				"its refresh token is stored, its access token is not served",
			tok.CorrelationID, tok.Subject, next.CompanyUUID))
		log.Error("Concur's token answer names another company; not serving its access token", "company", co.name,
			"company_uuid", next.CompanyUUID, "named", tok.Subject, "correlation_id", tok.CorrelationID)
	case tok.AccessToken.IsZero():
		// The first such answer may be followed by a grant at once; more in
		// a row back off, so that reads cannot drive grants without bound.
		wait := time.Duration(0)
		if prev.Failures > 0 {
			wait = backoff(prev.Failures, nil)
		}
		withhold(t, prev, now, wait, fmt.Sprintf(
			"Concur's token answer (correlation id %s) carried a refresh token (stored) but no access token; "+
				"the next read or renewal asks for one", tok.CorrelationID))
	}
}

// withhold marks t as not servable after a grant whose refresh token was
// kept: no access token, degraded, next attempt after wait.
func withhold(t *tokenEntry, prev tokenEntry, now time.Time, wait time.Duration, why string) {
	t.AccessToken, t.TokenType, t.ExpiresAt = "", "", time.Time{}
	t.Status, t.LastError, t.LastErrorAt = statusDegraded, why, now
	t.Failures = prev.Failures + 1
	t.NextAttemptAt = now.Add(wait)
}

// subjectMismatch: the id_token names a company other than ours. Its `sub`
// is read without verifying the signature (concur.Token.Subject), which is
// acceptable: the token arrives over TLS from the token endpoint we chose
// (an allow-listed host), in the same answer as the tokens we trust anyway.
// No id_token (or an unreadable one) names nobody and is not a mismatch.
func subjectMismatch(tok *concur.Token, companyUUID string) bool {
	return tok.Subject != "" && !strings.EqualFold(tok.Subject, companyUUID)
}

// checkBootstrapSubject refuses a bootstrap (request-token exchange or
// refresh-token import) whose token names another company.
func checkBootstrapSubject(tok *concur.Token, companyUUID string) error {
	if !subjectMismatch(tok, companyUUID) {
		return nil
	}
	return logical.CodedError(http.StatusBadRequest, fmt.Sprintf(
		"company_uuid: Concur issued a token for company %s, not for %s (correlation id %s); nothing was stored",
		tok.Subject, companyUUID, tok.CorrelationID))
}

// answerWarning says which fields of Concur's answer were unusable.
func answerWarning(tok *concur.Token) string {
	if len(tok.Warnings) == 0 {
		return ""
	}
	return "Concur's last token answer (correlation id " + tok.CorrelationID +
		") had fields of the wrong type, ignored: " + strings.Join(tok.Warnings, "; ")
}

// answerWarnings is the stored warning as a list (config read).
func answerWarnings(t tokenEntry) []string {
	if t.AnswerWarning == "" {
		return []string{}
	}
	return []string{t.AnswerWarning}
}

// errWithheld is what the caller of a renewal learns when its answer was
// stored but its access token is not served (see checkAnswer).
func errWithheld(e *companyEntry) error {
	if e.Token.AccessToken != "" {
		return nil
	}
	return logical.CodedError(http.StatusBadGateway, e.Token.LastError)
}

// tokenWarnings are what the responses about the token state (config,
// rotate) carry as warnings.
func tokenWarnings(t tokenEntry) []string {
	var out []string
	if t.LastError != "" {
		out = append(out, t.LastError)
	}
	if t.AnswerWarning != "" {
		out = append(out, t.AnswerWarning)
	}
	return out
}
