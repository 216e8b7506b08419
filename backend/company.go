package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/sync/singleflight"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// company is one connected company and the renewal state machine around
// its tokens: one Concur token call at a time (grantLock), each detached
// from the request that asked for it, each under a write-ahead marker in
// storage, each result stored before its access token is served. Only its
// own methods take its locks; the mount (tokenStore) supplies the app, the
// grant slots and the schedule.
type company struct {
	name  string
	store *tokenStore

	mu     sync.RWMutex
	loaded bool
	entry  *companyEntry // nil: no such company; never modified once published
	// unsaved: entry holds tokens Concur issued that storage has not yet
	// accepted. They are the only copy of the newest refresh token, so they
	// are kept, written before anything else, and not served until written.
	unsaved bool

	// grantLock is held for each Concur token call and the write that
	// follows (a channel, so that waiting for it can give up).
	grantLock chan struct{}
	flights   singleflight.Group
}

func newCompany(name string, store *tokenStore) *company {
	return &company{name: name, store: store, grantLock: make(chan struct{}, 1)}
}

// companyView is a consistent view of a company.
type companyView struct {
	entry   *companyEntry
	unsaved bool
}

func (co *company) current() companyView {
	co.mu.RLock()
	defer co.mu.RUnlock()
	return companyView{entry: co.entry, unsaved: co.unsaved}
}

// forget drops the cached entry so the next use reloads it from storage.
// Unsaved tokens are kept: storage does not have them.
func (co *company) forget() {
	co.mu.Lock()
	defer co.mu.Unlock()
	if !co.unsaved {
		co.loaded, co.entry = false, nil
	}
}

// load returns the cached entry, reading storage the first time.
func (co *company) load(ctx context.Context, s logical.Storage) (companyView, error) {
	co.mu.RLock()
	if co.loaded {
		v := companyView{entry: co.entry, unsaved: co.unsaved}
		co.mu.RUnlock()
		return v, nil
	}
	co.mu.RUnlock()
	co.mu.Lock()
	defer co.mu.Unlock()
	if !co.loaded {
		if err := co.readLocked(ctx, s); err != nil {
			return companyView{}, err
		}
		co.store.reschedule(co, companyView{entry: co.entry, unsaved: co.unsaved})
	}
	return companyView{entry: co.entry, unsaved: co.unsaved}, nil
}

// reschedule puts the company on the mount's schedule for its current
// state. The schedule is changed while mu is held, so that it always
// follows the newest state.
func (co *company) reschedule() {
	co.mu.RLock()
	defer co.mu.RUnlock()
	co.store.reschedule(co, companyView{entry: co.entry, unsaved: co.unsaved})
}

// readLocked replaces the cached entry by what storage holds. The caller
// holds mu.
func (co *company) readLocked(ctx context.Context, s logical.Storage) error {
	var e companyEntry
	found, err := getJSON(ctx, s, companyStorageKey(co.name), &e)
	if err != nil {
		return err
	}
	co.entry, co.unsaved = nil, false
	if found {
		co.entry = &e
	} else if co.name == defaultCompanyName {
		co.entry = co.store.legacyDefault() // a read-only node before the upgrade
	}
	// While another instance's grant is in flight, storage is read on each
	// use: that instance stores its result there any moment.
	co.loaded = co.entry == nil || !co.store.foreignGrantLive(&co.entry.Token)
	return nil
}

// latest is the entry a grant builds on, read while holding grantLock:
// unsaved tokens are written first (refreshing from older stored ones could
// burn a rotated refresh token); otherwise storage is read again, since
// another instance of the engine (before a reload or a step-down) may have
// stored newer tokens since this one cached them.
func (co *company) latest(ctx context.Context, s logical.Storage) (companyView, error) {
	if err := co.store.flushApp(ctx, s); err != nil {
		return companyView{}, err
	}
	v := co.current()
	if v.unsaved {
		if err := co.saveIssued(ctx, s, v.entry); err != nil {
			return companyView{}, fmt.Errorf("%s: %w", msgUnsaved, err)
		}
		return companyView{entry: v.entry}, nil
	}
	co.mu.Lock()
	err := co.readLocked(ctx, s)
	v = companyView{entry: co.entry, unsaved: co.unsaved}
	co.mu.Unlock()
	return v, err
}

// publish makes v current in memory.
func (co *company) publish(v companyView) {
	co.mu.Lock()
	defer co.mu.Unlock()
	co.entry, co.loaded, co.unsaved = v.entry, true, v.unsaved
	co.store.reschedule(co, v)
}

// saveIssued writes e, which carries tokens Concur issued, and publishes
// it. When the write fails e is still published, as unsaved, so the newest
// refresh token is not lost.
func (co *company) saveIssued(ctx context.Context, s logical.Storage, e *companyEntry) error {
	if err := putJSON(ctx, s, companyStorageKey(co.name), e); err != nil {
		co.publish(companyView{entry: e, unsaved: true})
		co.store.b.Logger().Error("storing tokens Concur issued failed; keeping them in memory and retrying the write",
			"company", co.name, "error", err)
		return err
	}
	co.publish(companyView{entry: e})
	return nil
}

// saveState writes e, which carries no new token, and publishes it.
func (co *company) saveState(ctx context.Context, s logical.Storage, e *companyEntry) error {
	if err := putJSON(ctx, s, companyStorageKey(co.name), e); err != nil {
		return err
	}
	co.publish(companyView{entry: e})
	return nil
}

// run does job holding grantLock and one of the mount's grant slots, in its
// own goroutine and with its own deadline, so that the job (a Concur call
// and the write that stores its result) finishes whatever the caller does;
// the caller waits only while its context lasts. Jobs with the same
// non-empty flight share one run.
func (co *company) run(ctx context.Context, flight string, job func(context.Context) error) error {
	detached := withCompany(context.WithoutCancel(ctx), co.name)
	work := func() (any, error) {
		lctx, cancel := context.WithTimeout(detached, lockTimeout)
		defer cancel()
		acquired := co.store.b.metrics.waitingForGrant(co.name)
		select {
		case co.grantLock <- struct{}{}:
			acquired()
		case <-lctx.Done():
			acquired()
			return nil, fmt.Errorf("waiting for the Concur token call in flight: %w", lctx.Err())
		}
		defer func() { <-co.grantLock }()
		release, err := co.store.takeGrantSlot(lctx)
		if err != nil {
			return nil, err
		}
		defer release()
		gctx, cancel := context.WithTimeout(detached, grantTimeout)
		defer cancel()
		return nil, job(gctx)
	}
	var ch <-chan singleflight.Result
	if flight != "" {
		ch = co.flights.DoChan(flight, work)
	} else {
		own := make(chan singleflight.Result, 1)
		go func() {
			_, err := work()
			own <- singleflight.Result{Err: err}
		}()
		ch = own
	}
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return fmt.Errorf("the caller stopped waiting; the Concur token call goes on and its result is stored: %w", ctx.Err())
	}
}

// close waits (until ctx ends) for a token call in flight and writes
// tokens storage has not accepted yet (Clean).
func (co *company) close(ctx context.Context, s logical.Storage) {
	select {
	case co.grantLock <- struct{}{}:
		defer func() { <-co.grantLock }()
	case <-ctx.Done():
		co.store.b.Logger().Warn("a Concur token call is still in flight at shutdown; its result is stored if storage still answers",
			"company", co.name)
		return
	}
	if v := co.current(); v.unsaved && s != nil {
		if err := co.saveIssued(ctx, s, v.entry); err != nil {
			co.store.b.Logger().Error("writing unsaved Concur tokens at shutdown failed; they are lost with this instance",
				"company", co.name, "error", err)
			return
		}
	}
	co.forget()
}

// idle waits until no token call is in flight (tests).
func (co *company) idle() {
	co.grantLock <- struct{}{}
	<-co.grantLock
}

// remaining is how long e's access token stays valid.
func (co *company) remaining(e *companyEntry) time.Duration {
	if e == nil || e.Token.AccessToken == "" {
		return 0
	}
	return e.Token.ExpiresAt.Sub(co.store.b.now())
}

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
	if !co.store.b.writeSafe() {
		return nil, logical.ErrReadOnly
	}
	var renewErr error
	if v.unsaved || !co.store.b.now().Before(v.entry.Token.NextAttemptAt) {
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
	app, err := co.store.loadApp(ctx, s)
	if err != nil {
		return appView{}, companyView{}, err
	}
	v, err := co.load(ctx, s)
	if err != nil {
		return appView{}, companyView{}, err
	}
	if app.entry == nil || v.entry == nil {
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
	now := co.store.b.now()
	switch r.kind {
	case wantRotate:
		return true
	case wantReplaceRejected:
		return e.Token.AccessToken == r.rejected
	case wantKeepAlive:
		return keepAliveDue(co.name, e, now) || refreshTokenDue(e, now)
	}
	return co.remaining(e) < r.need
}

// renew runs one refresh grant for r, detached from ctx.
func (co *company) renew(ctx context.Context, s logical.Storage, r renewal) error {
	return co.run(ctx, r.flight(), func(gctx context.Context) error { return co.renewLocked(gctx, s, r) })
}

// renewIfDue is the periodic renewal of one company: refresh a kept-ready
// access token when less than margin is left, or keep the refresh token
// alive, unless backing off or waiting for an operator.
func (co *company) renewIfDue(ctx context.Context, s logical.Storage, margin time.Duration) error {
	v, err := co.load(ctx, s)
	if err != nil {
		return err
	}
	e := v.entry
	if e == nil || waitsForOperator(e) {
		return nil
	}
	now := co.store.b.now()
	accessDue := e.Prewarm && co.remaining(e) < margin
	keepAlive := keepAliveDue(co.name, e, now) || refreshTokenDue(e, now)
	if !v.unsaved && ((!accessDue && !keepAlive) || now.Before(e.Token.NextAttemptAt)) {
		return nil
	}
	r := renewal{kind: wantToken, need: margin}
	if !accessDue && !v.unsaved {
		r = renewal{kind: wantKeepAlive}
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
	// Per mount: the missing scope that usually causes this is the app's.
	if now, last := co.store.b.now(), co.store.lastRejectedRenewal(); !last.IsZero() && now.Sub(last) < rejectedRenewalEvery {
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
	app, err := co.store.loadApp(ctx, s)
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
	if !co.store.b.writeSafe() {
		return logical.ErrReadOnly
	}
	if r.kind != wantRotate {
		if err := co.store.grantsPaused(); err != nil {
			return err
		}
	}
	if err := co.store.checkMarker(co.name, &e.Token); err != nil {
		return err
	}
	if r.kind == wantReplaceRejected {
		co.store.noteRejectedRenewal()
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
	tok, err := app.client.Refresh(ctx, host, app.entry.credentials(), concur.NewSecret(marked.Token.RefreshToken))
	took := time.Since(started)
	co.store.noteGrantResult(err)
	if err != nil {
		co.recordFailure(ctx, s, marked, err)
		co.store.b.renewalDone(ctx, co, took, err)
		return err
	}
	next := co.issued(marked, tok, app)
	if r.kind == wantKeepAlive {
		next.Token.RefreshRenewedAt = co.store.b.now()
	}
	saveErr := co.saveIssued(ctx, s, next)
	// Reported once the outcome is stored (or held unsaved); an answer whose
	// access token is withheld is not a renewal readers can use.
	withheld := errWithheld(next)
	co.store.b.renewalDone(ctx, co, took, withheld)
	if saveErr != nil {
		return saveErr
	}
	return withheld
}

// issued is e after Concur issued tok, with the answer checked (see
// checkAnswer).
func (co *company) issued(e *companyEntry, tok *concur.Token, app appView) *companyEntry {
	next := withToken(e, tok, app, co.store.b.now())
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
	t.LastErrorCode = ""
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
	now := co.store.b.now()
	t.LastError, t.LastErrorAt, t.Grant = cause.Error(), now, nil
	t.LastErrorCode = failureCode(cause)
	log := co.store.b.Logger()
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

// companyChange is a write of a company, validated by the handler.
type companyChange struct {
	companyUUID string
	prewarm     bool
	// app is the app the grant uses: a config write may change it in the
	// same request; it is stored after the company (and is current from
	// the moment a grant made with it succeeded).
	app appView
	// requestToken or refreshToken (at most one) bootstraps the company
	// with a grant; with neither the stored tokens are kept.
	requestToken, refreshToken concur.Secret
	// refreshBase is where an imported refresh token is checked: its
	// geolocation when given, else base_url.
	refreshBase string
}

func (c companyChange) bootstraps() bool { return !c.requestToken.IsZero() || !c.refreshToken.IsZero() }

// bootstrapField names the field a bootstrap grant's failure is about.
func (c companyChange) bootstrapField() string {
	if !c.requestToken.IsZero() {
		return "request_token"
	}
	return "refresh_token"
}

// configure stores c, after obtaining tokens from Concur when it bootstraps
// (detached from ctx, like every grant), and returns the new entry.
func (co *company) configure(ctx context.Context, s logical.Storage, c companyChange) (*companyEntry, error) {
	var out *companyEntry
	err := co.run(ctx, "", func(gctx context.Context) error {
		next, err := co.configureLocked(gctx, s, c)
		out = next
		return err
	})
	if err != nil {
		return nil, err // out may still be written by the job: do not read it
	}
	return out, nil
}

// configureLocked stores c under grantLock (see configure).
func (co *company) configureLocked(ctx context.Context, s logical.Storage, c companyChange) (*companyEntry, error) {
	v, err := co.latest(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := co.checkNoForeignGrant(v); err != nil {
		return nil, err
	}
	next := &companyEntry{CompanyUUID: c.companyUUID, Prewarm: c.prewarm}
	switch {
	case c.bootstraps():
		tok, gerr := co.bootstrapGrant(ctx, c)
		if gerr != nil {
			return nil, gerr
		}
		next = co.issued(next, tok, c.app)
		if c.app.entry != co.store.currentApp().entry {
			co.store.adoptApp(c.app) // the tokens it obtained must stay renewable with it
		}
		err = co.saveIssued(ctx, s, next)
	case v.entry != nil && v.entry.CompanyUUID == c.companyUUID:
		next.Token = v.entry.Token
		err = co.saveState(ctx, s, next)
	default:
		next.Token.Status = statusNeedsBootstrap
		err = co.saveState(ctx, s, next)
	}
	if err != nil {
		return nil, err
	}
	return next, co.storeApp(ctx, s, c.app)
}

// storeApp stores a config write's app settings, after its company, or
// writes settings adopted by its grant.
func (co *company) storeApp(ctx context.Context, s logical.Storage, app appView) error {
	if app.entry == co.store.currentApp().entry {
		return co.store.flushApp(ctx, s)
	}
	if err := co.store.saveApp(ctx, s, app); err != nil {
		return fmt.Errorf("%w: %w", errAppUnsaved, err)
	}
	return nil
}

// bootstrapGrant exchanges the request token, or checks the refresh token
// with a grant. No marker: the token presented is not the stored one, so no
// other instance can be presenting it.
func (co *company) bootstrapGrant(ctx context.Context, c companyChange) (*concur.Token, error) {
	a := c.app.entry
	var tok *concur.Token
	var err error
	if !c.requestToken.IsZero() {
		tok, err = c.app.client.ExchangeRequestToken(ctx, a.BaseURL, a.credentials(), c.companyUUID, c.requestToken)
		co.store.b.metrics.grant(co.name, grantExchange, err)
	} else {
		tok, err = c.app.client.Refresh(ctx, c.refreshBase, a.credentials(), c.refreshToken)
		co.store.b.metrics.grant(co.name, grantRefresh, err)
	}
	if c.app.entry == co.store.currentApp().entry || !concur.RefusesClient(err) {
		// A refusal of settings that are not stored yet says nothing about the app's.
		co.store.noteGrantResult(err)
	}
	if err != nil {
		return nil, err
	}
	if err := checkBootstrapSubject(tok, c.companyUUID); err != nil {
		return nil, err
	}
	if tok.RefreshToken.IsZero() {
		// Without a refresh token the engine could serve for an hour and then nothing.
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf(
			"%s: Concur's answer carried no refresh token (correlation id %s); nothing was stored", c.bootstrapField(), tok.CorrelationID))
	}
	return tok, nil
}

// checkNoForeignGrant refuses to replace or delete tokens while another
// instance's grant for them is in flight: its result would land after.
func (co *company) checkNoForeignGrant(v companyView) error {
	if v.entry == nil {
		return nil
	}
	return co.store.checkMarker(co.name, &v.entry.Token)
}

// remove deletes the company's tokens, once no token call is in flight.
func (co *company) remove(ctx context.Context, s logical.Storage) error {
	return co.run(ctx, "", func(gctx context.Context) error {
		v, err := co.latest(gctx, s)
		if err != nil {
			return err
		}
		if err := co.checkNoForeignGrant(v); err != nil {
			return err
		}
		if err := s.Delete(gctx, companyStorageKey(co.name)); err != nil {
			return err
		}
		co.publish(companyView{})
		co.store.b.metrics.forgetCompany(co.name)
		return nil
	})
}
