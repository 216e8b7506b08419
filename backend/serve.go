package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

const (
	// minServeTTL: a read refreshes instead of handing out a token with less
	// life than this left, when it can.
	minServeTTL = time.Minute
	// readGrantSpacing: what reads ask for (min_ttl) is capped so that a
	// fresh token satisfies them for at least this long (or half the
	// token's lifetime, if Concur issues shorter ones).
	readGrantSpacing = 5 * time.Minute
)

// served is what a read gets: a usable company entry, the app to call
// Concur with, and warnings.
type served struct {
	entry    *companyEntry
	app      appView
	warnings []string
}

// usable returns the company with an access token that has at least need
// left, renewing it first when needed and allowed. need is capped so that
// a fresh token from Concur satisfies it (see readNeedCap). A renewal that
// fails or may not happen now still serves a token that has not expired,
// with a warning.
func (co *company) usable(ctx context.Context, s logical.Storage, need time.Duration) (*served, error) {
	app, v, err := co.loadServable(ctx, s)
	if err != nil {
		return nil, err
	}
	asked := need
	need = min(need, readNeedCap(v.entry))
	if !v.unsaved && co.remaining(v.entry) >= need {
		return co.serve(v, app, asked, nil), nil
	}

	// A renewal is needed. Only the node that may write storage calls
	// Concur; elsewhere Vault forwards the request on ErrReadOnly.
	if !co.deps.writeSafe() {
		return nil, logical.ErrReadOnly
	}
	var renewErr error
	if v.unsaved || !co.deps.now().Before(v.entry.Token.NextAttemptAt) {
		renewErr = co.renew(ctx, s, renewal{kind: wantToken, need: need})
	}
	if app, v, err = co.loadServable(ctx, s); err != nil {
		return nil, err
	}
	if v.unsaved {
		return nil, logical.CodedError(500, msgUnsaved+": "+errText(renewErr))
	}
	if co.remaining(v.entry) <= 0 {
		if renewErr != nil {
			return nil, upstreamError(renewErr)
		}
		// In backoff after earlier failures: say what failed, without calling Concur.
		cause := v.entry.Token.LastError
		if cause == "" {
			cause = "an earlier failure"
		}
		return nil, logical.CodedError(502, "the Concur access token has expired and renewal is backing off after: "+cause)
	}
	return co.serve(v, app, asked, renewErr), nil
}

// loadServable loads the app and the company and says why they cannot
// serve tokens, if they cannot.
func (co *company) loadServable(ctx context.Context, s logical.Storage) (appView, companyView, error) {
	app, err := co.deps.app.load(ctx, s)
	if err != nil {
		return appView{}, companyView{}, err
	}
	v, err := co.load(ctx, s)
	if err != nil {
		return appView{}, companyView{}, err
	}
	switch {
	case v.unreadable != "":
		return appView{}, companyView{}, errUnreadable(v.unreadable)
	case app.entry == nil || v.entry == nil:
		return appView{}, companyView{}, co.notConfigured()
	}
	return app, v, servable(v.entry)
}

// notConfigured is the error for a company that does not exist.
func (co *company) notConfigured() error {
	if co.name == defaultCompanyName {
		return errNotConfigured()
	}
	return errNoCompany(co.name)
}

// serve is what a reader asking for asked gets from v, with what it should
// know: the state's warnings, a renewal that did not happen, or less life
// than asked for.
func (co *company) serve(v companyView, app appView, asked time.Duration, renewErr error) *served {
	out := &served{entry: v.entry, app: app, warnings: stateWarnings(v.entry)}
	left := co.remaining(v.entry)
	t := v.entry.Token
	switch {
	case t.LastError != "":
	case renewErr != nil:
		// Not recorded in the state (a grant by another instance is in flight, say).
		out.warnings = append(out.warnings, "renewing the Concur token did not happen (the token served is still valid): "+renewErr.Error())
	case left < asked && asked > minServeTTL: // the reader asked for it (min_ttl)
		out.warnings = append(out.warnings, fmt.Sprintf(
			"the token has %d seconds left, less than asked for: Concur issues tokens valid for %d seconds",
			int(left.Seconds()), int(t.ExpiresAt.Sub(t.LastRefreshAt).Seconds())))
	}
	return out
}

// readNeedCap is the most life a read may ask for: a token fresh from
// Concur has it for at least readGrantSpacing (or half its lifetime), so
// reads alone cause at most one grant per that interval.
func readNeedCap(e *companyEntry) time.Duration {
	lifetime := e.Token.ExpiresAt.Sub(e.Token.LastRefreshAt)
	if e.Token.AccessToken == "" || lifetime <= 0 {
		lifetime = time.Hour // nothing issued yet to learn from: Concur's documented lifetime
	}
	return lifetime - min(readGrantSpacing, lifetime/2)
}

// servable says why an entry cannot serve tokens at all.
func servable(e *companyEntry) error {
	if waitsForOperator(e) {
		return errNeedsBootstrap(e.Token.LastError)
	}
	return nil
}

// waitsForOperator: no refresh token Concur honours; only a new company
// token written by an operator helps.
func waitsForOperator(e *companyEntry) bool {
	return e.Token.Status == statusNeedsBootstrap || e.Token.RefreshToken == ""
}

// stateWarnings are what readers should know about a token they are given.
func stateWarnings(e *companyEntry) []string {
	switch {
	case e.Token.LastError == "":
		return nil
	case e.Token.Status == statusDegraded:
		return []string{"the last attempt to renew the Concur token failed (the token served is still valid): " + e.Token.LastError}
	default:
		return []string{e.Token.LastError}
	}
}
