package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

const (
	// refreshTokenMargin renews even a fresh access token when the refresh
	// token itself is this close to expiry (a safety net: keep-alives and
	// renewals already slide it six months forward). Such renewals happen
	// at most once per refreshForItsSakeEvery.
	refreshTokenMargin     = 7 * 24 * time.Hour
	refreshForItsSakeEvery = 24 * time.Hour

	// rejectedRenewalEvery: a token Concur refused at an API (401/403) is
	// renewed at most once per this, per company.
	rejectedRenewalEvery = 5 * time.Minute

	backoffBase = 15 * time.Second
	backoffMax  = 5 * time.Minute
	// maxRetryAfter caps how long a Retry-After from Concur defers renewal.
	maxRetryAfter = time.Hour

	// maxGrantsPerPass bounds the periodic renewals one pass starts, the
	// rest waiting for the next pass.
	maxGrantsPerPass = 100
)

// wantKind is what a renewal is for.
type wantKind int

const (
	wantToken           wantKind = iota // an access token with at least need left (reads, prewarm)
	wantKeepAlive                       // a grant for the refresh token's sake (keep-alive, or its expiry near)
	wantReplaceRejected                 // a new access token: Concur refused the current one before its expiry
	wantRotate                          // an operator asked (rotate): a grant now, whatever the state
)

// renewal is one request for a refresh grant.
type renewal struct {
	kind wantKind
	// need (wantToken): renew unless the access token has this much life left.
	need time.Duration
	// rejected (wantReplaceRejected): renew only while this is the current access token.
	rejected string
}

// flight names the renewals that share one run: reads and periodic
// renewals want the same thing; each operator rotate is a grant of its own.
func (r renewal) flight() string {
	switch r.kind {
	case wantKeepAlive:
		return "keep-alive"
	case wantReplaceRejected:
		return "rejected"
	case wantRotate:
		return ""
	}
	return "token"
}

// wanted says whether the renewal is still needed given the latest state.
func (r renewal) wanted(co *company, e *companyEntry) bool {
	now := co.deps.now()
	switch r.kind {
	case wantRotate:
		return true
	case wantReplaceRejected:
		return e.Token.AccessToken == r.rejected
	case wantKeepAlive:
		at, _ := nextRenewal(co.name, e, co.deps.app.margin())
		return !at.IsZero() && !at.After(now)
	}
	return co.remaining(e) < r.need
}

// renew runs one refresh grant for r, detached from ctx.
func (co *company) renew(ctx context.Context, s logical.Storage, r renewal) error {
	return co.run(ctx, r.flight(), func(gctx context.Context) error { return co.renewLocked(gctx, s, r) })
}

// renewIfDue is the periodic renewal of one company, when nextRenewal
// says it is due (or tokens wait to be stored).
func (co *company) renewIfDue(ctx context.Context, s logical.Storage) error {
	v, err := co.load(ctx, s)
	if err != nil {
		return err
	}
	e := v.entry
	if e == nil || waitsForOperator(e) {
		return nil
	}
	margin := co.deps.app.margin()
	at, kind := nextRenewal(co.name, e, margin)
	if !v.unsaved && co.deps.now().Before(at) {
		return nil
	}
	r := renewal{kind: wantKeepAlive}
	if kind == renewAccess || v.unsaved {
		r = renewal{kind: wantToken, need: margin}
	}
	return co.renew(ctx, s, r)
}

// saveUnsaved writes tokens storage has not accepted yet (under grantLock,
// as a grant would, but without calling Concur).
func (co *company) saveUnsaved(ctx context.Context, s logical.Storage) error {
	if !co.current().unsaved {
		return nil
	}
	return co.run(ctx, "save", func(gctx context.Context) error {
		_, err := co.latest(gctx, s)
		return err
	})
}

// rotate renews now, whatever the token's age: the operator asked for it.
func (co *company) rotate(ctx context.Context, s logical.Storage) (*companyEntry, error) {
	if err := co.renew(ctx, s, renewal{kind: wantRotate}); err != nil {
		return nil, err
	}
	v, err := co.load(ctx, s)
	if err != nil {
		return nil, err
	}
	if v.entry == nil {
		return nil, co.notConfigured()
	}
	return v.entry, nil
}

// renewRejected renews after Concur refused accessToken before its expiry,
// unless another caller already replaced it. It does so at most once per
// rejectedRenewalEvery: a token refused again right after a renewal points
// at the app's scopes, and renewing cannot fix that.
func (co *company) renewRejected(ctx context.Context, s logical.Storage, accessToken string) error {
	// Per company: one company Concur keeps refusing must not stop another
	// from replacing a token Concur refused.
	co.mu.RLock()
	last := co.lastRejected
	co.mu.RUnlock()
	if now := co.deps.now(); !last.IsZero() && now.Sub(last) < rejectedRenewalEvery {
		return logical.CodedError(http.StatusForbidden, fmt.Sprintf(
			"Concur refused the company's access token again although it was renewed %s ago: the app most likely lacks "+
				"the Identity scope for this read (identity.user.ids.read, identity.user.core.read, "+
				"identity.user.coresensitive.read or identity.user.enterprise.read); not renewing again before %s",
			now.Sub(last).Round(time.Second), last.Add(rejectedRenewalEvery).UTC().Format(time.RFC3339)))
	}
	return co.renew(ctx, s, renewal{kind: wantReplaceRejected, rejected: accessToken})
}

// renewLocked does the refresh grant when r still wants it. It runs under
// grantLock (see run).
func (co *company) renewLocked(ctx context.Context, s logical.Storage, r renewal) error {
	v, err := co.latest(ctx, s)
	if err != nil {
		return err
	}
	app, err := co.deps.app.load(ctx, s)
	if err != nil {
		return err
	}
	e := v.entry
	if e == nil || app.entry == nil {
		return co.notConfigured()
	}
	if r.kind != wantRotate {
		if err := servable(e); err != nil {
			return err
		}
	}
	if !r.wanted(co, e) {
		return nil // renewed while we waited
	}
	if e.Token.RefreshToken == "" {
		return errNeedsBootstrap(e.Token.LastError)
	}
	// A refresh may rotate the refresh token; a node that cannot store the
	// new one must not ask for it.
	if !co.deps.writeSafe() {
		return logical.ErrReadOnly
	}
	if r.kind != wantRotate {
		if err := co.deps.gate.paused(); err != nil {
			return err
		}
	}
	if err := co.checkMarker(&e.Token); err != nil {
		return err
	}
	if r.kind == wantReplaceRejected {
		co.mu.Lock()
		co.lastRejected = co.deps.now()
		co.mu.Unlock()
	}
	return co.refreshGrant(ctx, s, v, app, r)
}

// refreshGrant presents the stored refresh token to Concur, under a
// write-ahead marker, and stores what comes back.
func (co *company) refreshGrant(ctx context.Context, s logical.Storage, v companyView, app appView, r renewal) error {
	marked, err := co.markGrant(ctx, s, v.entry)
	if err != nil {
		return err
	}
	host := marked.Token.Geolocation
	if host == "" {
		host = app.entry.BaseURL
	}
	started := time.Now()
	var tok *concur.Token
	err = co.deps.gate.do(func() (err error) {
		tok, err = app.client.Refresh(ctx, host, app.entry.credentials(), concur.NewSecret(marked.Token.RefreshToken))
		return err
	})
	took := time.Since(started)
	if errors.Is(err, errClosed) {
		return err // cut off by Clean: nothing was asked of Concur, nothing is recorded
	}
	co.deps.gate.noteResult(err)
	if err != nil {
		co.recordFailure(ctx, s, marked, err)
		co.deps.renewed(ctx, co.name, took, err)
		return err
	}
	next := co.issued(marked, tok, app)
	if r.kind == wantKeepAlive {
		next.Token.RefreshRenewedAt = co.deps.now()
	}
	saveErr := co.saveIssued(ctx, s, next)
	// Reported once the outcome is stored (or held unsaved); an answer whose
	// access token is withheld is not a renewal readers can use.
	withheld := errWithheld(next)
	co.deps.renewed(ctx, co.name, took, withheld)
	if saveErr != nil {
		return saveErr
	}
	return withheld
}

// issued is e after Concur issued tok, with the answer checked (see
// checkAnswer).
func (co *company) issued(e *companyEntry, tok *concur.Token, app appView) *companyEntry {
	next := withToken(e, tok, app, co.deps.now())
	co.checkAnswer(next, e.Token, tok)
	return next
}

// withToken is e after Concur issued tok at now: the refresh token, its
// expiry and the geolocation (if the app's allowed hosts admit it) are
// taken from the response before the access token is ever served. The
// write-ahead marker is cleared.
func withToken(e *companyEntry, tok *concur.Token, app appView, now time.Time) *companyEntry {
	next := *e
	t := &next.Token
	t.AccessToken = tok.AccessToken.Reveal()
	t.TokenType = tok.TokenType
	t.ExpiresAt = tok.ExpiresAt
	if !tok.RefreshToken.IsZero() {
		t.RefreshToken = tok.RefreshToken.Reveal()
	}
	if !tok.RefreshExpiresAt.IsZero() {
		t.RefreshExpiresAt = tok.RefreshExpiresAt
	}
	if tok.Scope != "" {
		t.Scope = tok.Scope
	}
	t.LastRefreshAt = now
	t.Status, t.LastError, t.LastErrorAt, t.Failures, t.NextAttemptAt = statusOK, "", time.Time{}, 0, time.Time{}
	t.Grant = nil
	if geo := tok.Geolocation; geo != "" && geo != t.Geolocation {
		if err := app.client.AllowedHosts().Check(geo); err != nil {
			// Never send tokens where the operator did not allow; keep
			// the old host and say so.
			t.LastError = fmt.Sprintf("Concur named geolocation %q, which allowed_hosts does not allow; still using %q", geo, t.Geolocation)
			t.LastErrorAt = now
		} else {
			t.Geolocation = geo
		}
	}
	if tok.UnusableGeolocation != "" {
		t.LastError = fmt.Sprintf("Concur named geolocation %q, which is not a usable URL; still using %q",
			tok.UnusableGeolocation, t.Geolocation)
		t.LastErrorAt = now
	}
	if exp := t.RefreshExpiresAt; !exp.IsZero() && exp.Sub(now) < refreshTokenMargin {
		t.LastError = fmt.Sprintf("Concur did not move the refresh token's expiry forward: it expires %s, within %d days "+
			"even after a renewal; renewals for its sake happen at most once a day; write a new request_token before it expires",
			exp.UTC().Format(time.RFC3339), int(refreshTokenMargin.Hours()/24))
		t.LastErrorAt = now
	}
	if t.Geolocation == "" {
		t.Geolocation = app.entry.BaseURL
	}
	return &next
}

// recordFailure notes a failed renewal: Concur's coded refusals of the
// company's token wait for an operator; a refusal of the app's own
// credentials, and everything else, backs off. The marker is cleared.
func (co *company) recordFailure(ctx context.Context, s logical.Storage, e *companyEntry, cause error) {
	next := *e
	t := &next.Token
	now := co.deps.now()
	t.LastError, t.LastErrorAt, t.Grant = cause.Error(), now, nil
	log := co.log()
	switch {
	case concur.RefusesClient(cause):
		t.Status, t.Failures = statusDegraded, t.Failures+1
		t.NextAttemptAt = now.Add(backoff(t.Failures, cause))
		t.LastError = "Concur refused the app's client_id or client_secret (write concur/config with the right ones; " +
			"the company's tokens are kept): " + cause.Error()
		log.Error("Concur refused the app's client credentials; token calls wait for a config write", "company", co.name, "error", cause)
	case concur.RefusedForGood(cause):
		t.Status, t.NextAttemptAt = statusNeedsBootstrap, time.Time{}
		log.Error("Concur refused the refresh token; the company needs a new company token", "company", co.name, "error", cause)
	default:
		t.Status, t.Failures = statusDegraded, t.Failures+1
		t.NextAttemptAt = now.Add(backoff(t.Failures, cause))
		log.Warn("renewing the Concur token failed; backing off", "company", co.name, "error", cause,
			"retry_at", t.NextAttemptAt.Format(time.RFC3339))
	}
	// The bookkeeping is worth storing but not worth failing over: if the
	// write fails the state still changes in memory.
	if err := co.saveState(ctx, s, &next); err != nil {
		co.publish(companyView{entry: &next, unsaved: co.current().unsaved})
	}
}

// backoff is the wait before the next automatic attempt after failures
// consecutive failures: doubling from backoffBase up to backoffMax, or
// longer when Concur asked for it with Retry-After (up to maxRetryAfter).
func backoff(failures int, cause error) time.Duration {
	wait := min(backoffBase<<min(failures-1, 10), backoffMax)
	if after, ok := retryAfter(cause); ok && after > wait {
		wait = min(after, maxRetryAfter)
	}
	return wait
}

// retryAfter is the Retry-After Concur sent with cause, if any.
func retryAfter(cause error) (time.Duration, bool) {
	var ce *concur.Error
	if errors.As(cause, &ce) && ce.HasRetryAfter {
		return ce.RetryAfter, true
	}
	return 0, false
}

func errText(err error) string {
	if err == nil {
		return "no error recorded"
	}
	return err.Error()
}
