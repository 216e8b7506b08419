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

const (
	// grantTimeout bounds one Concur token call, retries included, and
	// lockTimeout the wait for the one before it. Both are detached from the
	// caller's context: a grant Concur may already have processed must end
	// with its result stored, whoever stopped waiting for it.
	grantTimeout = 60 * time.Second
	lockTimeout  = 60 * time.Second
	// markerSlack is added to grantTimeout for the write-ahead marker's
	// deadline: the write of the result comes after the grant.
	markerSlack = 30 * time.Second
	// defaultCleanWait bounds how long Clean waits for a grant in flight.
	defaultCleanWait = 5 * time.Second

	// minServeTTL: a read refreshes instead of handing out a token with less
	// life than this left, when it can.
	minServeTTL = time.Minute
	// readGrantSpacing: what reads ask for (min_ttl) is capped so that a
	// fresh token satisfies them for at least this long (or half the
	// token's lifetime, if Concur issues shorter ones).
	readGrantSpacing = 5 * time.Minute

	// refreshTokenMargin renews even a fresh access token when the refresh
	// token itself is this close to expiry (a safety net: every hourly
	// renewal already slides it six months forward). Such renewals happen
	// at most once per refreshForItsSakeEvery.
	refreshTokenMargin     = 7 * 24 * time.Hour
	refreshForItsSakeEvery = 24 * time.Hour

	// rejectedRenewalEvery: a token Concur refused at an API (401/403) is
	// renewed at most once per this, per mount.
	rejectedRenewalEvery = 5 * time.Minute

	backoffBase = 15 * time.Second
	backoffMax  = 5 * time.Minute
	// maxRetryAfter caps how long a Retry-After from Concur defers renewal.
	maxRetryAfter = time.Hour
)

// errClosed: Clean ran; this instance makes no more Concur calls.
var errClosed = logical.CodedError(http.StatusServiceUnavailable,
	"the Concur engine is shutting down on this node (unmount, seal, step-down or plugin reload); try again")

// tokenStore keeps the mount's state (settings and tokens) in memory, backed
// by one storage entry, and runs the Concur token calls: one at a time, each
// detached from the request that asked for it, each under a write-ahead
// marker in storage. Only its own methods take its locks.
type tokenStore struct {
	b *backend

	mu     sync.RWMutex
	loaded bool
	state  *engineState // nil when not configured; never modified once published
	client *concur.Client
	// unsaved: state holds tokens Concur issued that storage has not yet
	// accepted. They are the only copy of the newest refresh token, so they
	// are kept, written before anything else, and not served until written.
	unsaved bool
	// closed: Clean ran; no new Concur calls.
	closed bool
	// lastRejected is when a token Concur refused at an API was last renewed.
	lastRejected time.Time

	// grantLock is held for each Concur token call and the write that
	// follows (a channel, so that waiting for it can give up).
	grantLock chan struct{}
	flights   singleflight.Group
	// instance names this backend instance in its write-ahead markers.
	instance  string
	cleanWait time.Duration
}

func newTokenStore(b *backend) *tokenStore {
	return &tokenStore{b: b, grantLock: make(chan struct{}, 1), instance: newInstanceID(), cleanWait: defaultCleanWait}
}

// snapshot is a consistent view of the store.
type snapshot struct {
	state   *engineState
	client  *concur.Client
	unsaved bool
}

func (ts *tokenStore) current() snapshot {
	return snapshot{state: ts.state, client: ts.client, unsaved: ts.unsaved}
}

// forget drops the cached state so the next use reloads it from storage.
// Unsaved tokens are kept: storage does not have them.
func (ts *tokenStore) forget() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.unsaved {
		return
	}
	ts.loaded, ts.state, ts.client = false, nil, nil
}

// load returns the cached state, reading storage the first time.
func (ts *tokenStore) load(ctx context.Context, s logical.Storage) (snapshot, error) {
	ts.mu.RLock()
	if ts.loaded {
		snap := ts.current()
		ts.mu.RUnlock()
		return snap, nil
	}
	ts.mu.RUnlock()

	ts.mu.Lock()
	defer ts.mu.Unlock()
	if !ts.loaded {
		if err := ts.readLocked(ctx, s); err != nil {
			return snapshot{}, err
		}
	}
	return ts.current(), nil
}

// readLocked replaces the cached state by what storage holds. The caller
// holds mu.
func (ts *tokenStore) readLocked(ctx context.Context, s logical.Storage) error {
	var st engineState
	found, err := getJSON(ctx, s, stateStorageKey, &st)
	if err != nil {
		return err
	}
	var client *concur.Client
	if found {
		if client, err = ts.b.newConcurClient(st.Config.AllowedHosts); err != nil {
			return fmt.Errorf("stored allowed_hosts: %w", err)
		}
		ts.state = &st
	} else {
		ts.state = nil
	}
	// While another instance's grant is in flight, storage is read on each
	// use: that instance stores its result there any moment.
	ts.client, ts.loaded, ts.unsaved = client, !ts.foreignGrantLive(ts.state), false
	return nil
}

// latest is the state a grant builds on, read while holding grantLock:
// unsaved tokens are written first (refreshing from older stored ones could
// burn a rotated refresh token); otherwise storage is read again, since
// another instance of the engine (before a reload or a step-down) may have
// stored newer tokens since this one cached them.
func (ts *tokenStore) latest(ctx context.Context, s logical.Storage) (snapshot, error) {
	ts.mu.Lock()
	snap := ts.current()
	if !snap.unsaved {
		err := ts.readLocked(ctx, s)
		snap = ts.current()
		ts.mu.Unlock()
		return snap, err
	}
	ts.mu.Unlock()
	if err := ts.save(ctx, s, snap.state, snap.client, true); err != nil {
		return snapshot{}, fmt.Errorf("%s: %w", msgUnsaved, err)
	}
	snap.unsaved = false
	return snap, nil
}

// publish makes st, and the client built for its settings, current in memory.
func (ts *tokenStore) publish(st *engineState, client *concur.Client, unsaved bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.state, ts.client, ts.loaded, ts.unsaved = st, client, true, unsaved
}

// save writes st to storage and publishes it. When the write fails and st
// carries tokens from Concur (fromConcur), it is still published as unsaved
// so the newest refresh token is not lost.
func (ts *tokenStore) save(ctx context.Context, s logical.Storage, st *engineState, client *concur.Client, fromConcur bool) error {
	if err := putJSON(ctx, s, stateStorageKey, st); err != nil {
		if fromConcur {
			ts.publish(st, client, true)
			ts.b.Logger().Error("storing tokens Concur issued failed; keeping them in memory and retrying the write", "error", err)
		}
		return err
	}
	ts.publish(st, client, false)
	return nil
}

// remaining is how long the access token stays valid.
func (ts *tokenStore) remaining(st *engineState) time.Duration {
	if st == nil || st.Token.AccessToken == "" {
		return 0
	}
	return st.Token.ExpiresAt.Sub(ts.b.now())
}

// run does job holding grantLock, in its own goroutine and with its own
// deadline, so that the job (a Concur call and the write that stores its
// result) finishes whatever the caller does; the caller waits only while
// its context lasts. Jobs with the same non-empty key share one run.
func (ts *tokenStore) run(ctx context.Context, key string, job func(context.Context) error) error {
	detached := context.WithoutCancel(ctx)
	work := func() (any, error) {
		lctx, cancel := context.WithTimeout(detached, lockTimeout)
		defer cancel()
		acquired := ts.b.metrics.waitingForGrant()
		select {
		case ts.grantLock <- struct{}{}:
			acquired()
		case <-lctx.Done():
			acquired()
			return nil, fmt.Errorf("waiting for the Concur token call in flight: %w", lctx.Err())
		}
		defer func() { <-ts.grantLock }()
		if ts.isClosed() {
			return nil, errClosed
		}
		gctx, cancel := context.WithTimeout(detached, grantTimeout)
		defer cancel()
		return nil, job(gctx)
	}
	var ch <-chan singleflight.Result
	if key != "" {
		ch = ts.flights.DoChan(key, work)
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

func (ts *tokenStore) isClosed() bool {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return ts.closed
}

// close ends this instance's use of Concur (Clean): no new token calls; a
// call in flight is waited for (at most cleanWait), and tokens storage has
// not accepted yet are written while it still answers. Vault may have
// cancelled ctx already; the wait and the write are bounded on their own.
func (ts *tokenStore) close(ctx context.Context, s logical.Storage) {
	ts.mu.Lock()
	ts.closed = true
	ts.mu.Unlock()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ts.cleanWait)
	defer cancel()
	select {
	case ts.grantLock <- struct{}{}:
		defer func() { <-ts.grantLock }()
	case <-wctx.Done():
		ts.b.Logger().Warn("a Concur token call is still in flight at shutdown; its result is stored if storage still answers",
			"waited", ts.cleanWait)
		return
	}
	ts.mu.RLock()
	snap := ts.current()
	ts.mu.RUnlock()
	if snap.unsaved && s != nil {
		if err := ts.save(wctx, s, snap.state, snap.client, true); err != nil {
			ts.b.Logger().Error("writing unsaved Concur tokens at shutdown failed; they are lost with this instance", "error", err)
			return
		}
	}
	ts.forget()
}

// idle waits until no token call is in flight (tests).
func (ts *tokenStore) idle() {
	ts.grantLock <- struct{}{}
	<-ts.grantLock
}

// served is what a read gets: a usable state plus warnings.
type served struct {
	state    *engineState
	client   *concur.Client
	warnings []string
}

// usable returns a state whose access token has at least need left,
// renewing it first when needed and allowed. need is capped so that a
// fresh token from Concur satisfies it (see readNeedCap). A transient
// renewal failure still serves a token that has not expired, with a warning.
func (ts *tokenStore) usable(ctx context.Context, s logical.Storage, need time.Duration) (*served, error) {
	snap, err := ts.load(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := servable(snap.state); err != nil {
		return nil, err
	}
	asked := need
	need = min(need, readNeedCap(snap.state))
	if !snap.unsaved && ts.remaining(snap.state) >= need {
		return ts.serve(snap, asked, nil), nil
	}

	// A renewal is needed. Only the node that may write storage calls
	// Concur; elsewhere Vault forwards the request on ErrReadOnly.
	if !ts.b.writeSafe() {
		return nil, logical.ErrReadOnly
	}
	var renewErr error
	if snap.unsaved || !ts.b.now().Before(snap.state.Token.NextAttemptAt) {
		renewErr = ts.renew(ctx, s, renewal{flight: flightRead, need: need})
	}

	snap, err = ts.load(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := servable(snap.state); err != nil {
		return nil, err
	}
	if snap.unsaved {
		return nil, logical.CodedError(500, msgUnsaved+": "+errText(renewErr))
	}
	left := ts.remaining(snap.state)
	if left <= 0 {
		if renewErr != nil {
			return nil, upstreamError(renewErr)
		}
		// In backoff after earlier failures: say what failed, without calling Concur.
		cause := snap.state.Token.LastError
		if cause == "" {
			cause = "an earlier failure"
		}
		return nil, logical.CodedError(502, "the Concur access token has expired and renewal is backing off after: "+cause)
	}
	return ts.serve(snap, asked, renewErr), nil
}

// serve is what a reader asking for asked gets from snap, with what it
// should know: the state's warnings, a renewal that did not happen, or less
// life than asked for.
func (ts *tokenStore) serve(snap snapshot, asked time.Duration, renewErr error) *served {
	out := &served{state: snap.state, client: snap.client, warnings: stateWarnings(snap.state)}
	left := ts.remaining(snap.state)
	switch {
	case snap.state.Token.LastError != "":
	case renewErr != nil:
		// Not recorded in the state (a grant by another instance is in flight, say).
		out.warnings = append(out.warnings, "renewing the Concur token did not happen (the token served is still valid): "+renewErr.Error())
	case left < asked && asked > minServeTTL: // the reader asked for it (min_ttl)
		out.warnings = append(out.warnings, fmt.Sprintf(
			"the token has %d seconds left, less than asked for: Concur issues tokens valid for %d seconds",
			int(left.Seconds()), int(snap.state.Token.ExpiresAt.Sub(snap.state.Token.LastRefreshAt).Seconds())))
	}
	return out
}

// readNeedCap is the most life a read may ask for: a token fresh from
// Concur has it for at least readGrantSpacing (or half its lifetime), so
// reads alone cause at most one grant per that interval.
func readNeedCap(st *engineState) time.Duration {
	lifetime := st.Token.ExpiresAt.Sub(st.Token.LastRefreshAt)
	if st.Token.AccessToken == "" || lifetime <= 0 {
		lifetime = time.Hour // nothing issued yet to learn from: Concur's documented lifetime
	}
	return lifetime - min(readGrantSpacing, lifetime/2)
}

// servable says why a state cannot serve tokens at all.
func servable(st *engineState) error {
	switch {
	case st == nil:
		return errNotConfigured()
	case st.Token.Status == statusNeedsBootstrap || st.Token.RefreshToken == "":
		return errNeedsBootstrap(st.Token.LastError)
	}
	return nil
}

// stateWarnings are what readers should know about a token they are given.
func stateWarnings(st *engineState) []string {
	switch {
	case st.Token.LastError == "":
		return nil
	case st.Token.Status == statusDegraded:
		return []string{"the last attempt to renew the Concur token failed (the token served is still valid): " + st.Token.LastError}
	default:
		return []string{st.Token.LastError}
	}
}

// Flights: renewals with the same flight share one run (see run). Reads
// and periodic renewals want the same thing, an access token with enough
// life; each operator rotate ("") is a grant of its own.
const (
	flightRead     = "read"
	flightRotate   = ""
	flightRejected = "rejected"
	flightRefresh  = "refresh-token"
)

// renewal is one request for a refresh grant.
type renewal struct {
	flight string
	// need: renew unless the access token has this much life left.
	need time.Duration
	// rejected: renew only while this is the current access token (Concur
	// refused it before its expiry).
	rejected string
	// operator: an operator asked (rotate): renew whatever the token's age,
	// and even after Concur refused it (the cause may have been fixed).
	operator bool
	// forRefreshToken: renew because the refresh token nears its expiry.
	forRefreshToken bool
}

// wanted says whether the renewal is still needed given the latest state.
func (r renewal) wanted(ts *tokenStore, st *engineState) bool {
	switch {
	case r.operator:
		return true
	case r.rejected != "":
		return st.Token.AccessToken == r.rejected
	case r.forRefreshToken:
		return refreshTokenDue(st, ts.b.now())
	}
	return ts.remaining(st) < r.need
}

// renew runs one refresh grant for r, detached from ctx.
func (ts *tokenStore) renew(ctx context.Context, s logical.Storage, r renewal) error {
	return ts.run(ctx, r.flight, func(gctx context.Context) error { return ts.renewLocked(gctx, s, r) })
}

// renewIfDue is the periodic renewal: refresh when the access token has less
// than the configured margin left (or the refresh token is near its end),
// unless backing off or waiting for an operator.
func (ts *tokenStore) renewIfDue(ctx context.Context, s logical.Storage) error {
	snap, err := ts.load(ctx, s)
	if err != nil {
		return err
	}
	st := snap.state
	if st == nil || servable(st) != nil {
		return nil
	}
	now := ts.b.now()
	accessDue := ts.remaining(st) < st.Config.RefreshMargin
	refreshDue := refreshTokenDue(st, now)
	if !snap.unsaved && (!(accessDue || refreshDue) || now.Before(st.Token.NextAttemptAt)) {
		return nil
	}
	r := renewal{flight: flightRead, need: st.Config.RefreshMargin}
	if refreshDue && !accessDue {
		r = renewal{flight: flightRefresh, forRefreshToken: true}
	}
	err = ts.renew(ctx, s, r)
	if err != nil {
		ts.b.Logger().Warn("periodic renewal of the Concur token failed", "error", err)
	}
	return err
}

// refreshTokenDue: the refresh token nears its expiry and no renewal was
// made for its sake in the last refreshForItsSakeEvery (when Concur does
// not move the expiry forward, renewing every minute would not help).
func refreshTokenDue(st *engineState, now time.Time) bool {
	exp := st.Token.RefreshExpiresAt
	return !exp.IsZero() && exp.Sub(now) < refreshTokenMargin && now.Sub(st.Token.RefreshRenewedAt) >= refreshForItsSakeEvery
}

// rotate renews now, whatever the token's age: the operator asked for it.
func (ts *tokenStore) rotate(ctx context.Context, s logical.Storage) (*engineState, error) {
	if err := ts.renew(ctx, s, renewal{flight: flightRotate, operator: true}); err != nil {
		return nil, err
	}
	snap, err := ts.load(ctx, s)
	if err != nil {
		return nil, err
	}
	return snap.state, nil
}

// renewRejected renews after Concur refused accessToken before its expiry,
// unless another caller already replaced it. It does so at most once per
// rejectedRenewalEvery: a token refused again right after a renewal points
// at the app's scopes, and renewing cannot fix that.
func (ts *tokenStore) renewRejected(ctx context.Context, s logical.Storage, accessToken string) error {
	ts.mu.RLock()
	last := ts.lastRejected
	ts.mu.RUnlock()
	if now := ts.b.now(); !last.IsZero() && now.Sub(last) < rejectedRenewalEvery {
		return logical.CodedError(http.StatusForbidden, fmt.Sprintf(
			"Concur refused the company's access token again although it was renewed %s ago: the app most likely lacks "+
				"the Identity scope for this read (identity.user.ids.read, identity.user.core.read, "+
				"identity.user.coresensitive.read or identity.user.enterprise.read); not renewing again before %s",
			now.Sub(last).Round(time.Second), last.Add(rejectedRenewalEvery).UTC().Format(time.RFC3339)))
	}
	return ts.renew(ctx, s, renewal{flight: flightRejected, rejected: accessToken})
}

// renewLocked does the refresh grant when r still wants it. It runs under
// grantLock (see run).
func (ts *tokenStore) renewLocked(ctx context.Context, s logical.Storage, r renewal) error {
	snap, err := ts.latest(ctx, s)
	if err != nil {
		return err
	}
	st := snap.state
	if st == nil {
		return errNotConfigured()
	}
	if !r.operator {
		if err := servable(st); err != nil {
			return err
		}
	}
	if !r.wanted(ts, st) {
		return nil // renewed while we waited
	}
	if st.Token.RefreshToken == "" {
		return errNeedsBootstrap(st.Token.LastError)
	}
	// A refresh may rotate the refresh token; a node that cannot store the
	// new one must not ask for it.
	if !ts.b.writeSafe() {
		return logical.ErrReadOnly
	}
	if err := ts.checkMarker(st); err != nil {
		return err
	}
	if r.rejected != "" {
		ts.mu.Lock()
		ts.lastRejected = ts.b.now()
		ts.mu.Unlock()
	}
	marked, err := ts.markGrant(ctx, s, snap)
	if err != nil {
		return err
	}
	host := st.Token.Geolocation
	if host == "" {
		host = st.Config.BaseURL
	}
	started := time.Now()
	tok, err := snap.client.Refresh(ctx, host, st.Config.credentials(), concur.NewSecret(st.Token.RefreshToken))
	ts.b.renewalDone(ctx, time.Since(started), err)
	if err != nil {
		ts.recordFailure(ctx, s, snapshot{state: marked, client: snap.client}, err)
		return err
	}
	next := ts.withToken(marked, tok, snap.client.AllowedHosts())
	if r.forRefreshToken {
		next.Token.RefreshRenewedAt = ts.b.now()
	}
	if err := ts.save(ctx, s, next, snap.client, true); err != nil {
		return err
	}
	return errWithheld(next)
}

// withToken is st after Concur issued tok: the refresh token, its expiry and
// the geolocation (if allow admits it) are taken from the response before
// the access token is ever served. The write-ahead marker is cleared.
func (ts *tokenStore) withToken(st *engineState, tok *concur.Token, allow *concur.HostAllowList) *engineState {
	next := *st
	t := &next.Token
	now := ts.b.now()
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
		if err := allow.Check(geo); err != nil {
			// Never send tokens where the operator did not allow; keep
			// the old host and say so.
			t.LastError = fmt.Sprintf("Concur named geolocation %q, which allowed_hosts does not allow; still using %q", geo, t.Geolocation)
			t.LastErrorAt = now
		} else {
			t.Geolocation = geo
		}
	}
	if tok.UnusableGeolocation != "" {
		t.LastError = fmt.Sprintf("Concur named geolocation %q, which is not a usable URL; still using %q", tok.UnusableGeolocation, t.Geolocation)
		t.LastErrorAt = now
	}
	if exp := t.RefreshExpiresAt; !exp.IsZero() && exp.Sub(now) < refreshTokenMargin {
		t.LastError = fmt.Sprintf("Concur did not move the refresh token's expiry forward: it expires %s, within %d days "+
			"even after a renewal; renewals for its sake happen at most once a day; write config with a new request_token before it expires",
			exp.UTC().Format(time.RFC3339), int(refreshTokenMargin.Hours()/24))
		t.LastErrorAt = now
	}
	if t.Geolocation == "" {
		t.Geolocation = st.Config.BaseURL
	}
	ts.checkAnswer(&next, st.Token, tok)
	return &next
}

// recordFailure notes a failed renewal: Concur's coded refusals wait for an
// operator, everything else backs off. The write-ahead marker is cleared.
func (ts *tokenStore) recordFailure(ctx context.Context, s logical.Storage, snap snapshot, cause error) {
	next := *snap.state
	t := &next.Token
	now := ts.b.now()
	t.LastError, t.LastErrorAt, t.Grant = cause.Error(), now, nil
	if concur.RefusedForGood(cause) {
		t.Status, t.NextAttemptAt = statusNeedsBootstrap, time.Time{}
		ts.b.Logger().Error("Concur refused the refresh token; the engine needs a new company token (write concur/config)", "error", cause)
	} else {
		t.Status = statusDegraded
		t.Failures++
		t.NextAttemptAt = now.Add(backoff(t.Failures, cause))
		ts.b.Logger().Warn("renewing the Concur token failed; backing off", "error", cause, "retry_at", t.NextAttemptAt.Format(time.RFC3339))
	}
	// The bookkeeping is worth storing but not worth failing over: if the
	// write fails the state still changes in memory.
	if err := ts.save(ctx, s, &next, snap.client, false); err != nil {
		ts.publish(&next, snap.client, snap.unsaved)
	}
}

// backoff is the wait before the next automatic attempt after failures
// consecutive failures: doubling from backoffBase up to backoffMax, or
// longer when Concur asked for it with Retry-After (up to maxRetryAfter).
func backoff(failures int, cause error) time.Duration {
	wait := min(backoffBase<<min(failures-1, 10), backoffMax)
	var ce *concur.Error
	if errors.As(cause, &ce) && ce.HasRetryAfter && ce.RetryAfter > wait {
		wait = min(ce.RetryAfter, maxRetryAfter)
	}
	return wait
}

func errText(err error) string {
	if err == nil {
		return "no error recorded"
	}
	return err.Error()
}

// configChange is a config write, validated by the handler.
type configChange struct {
	config configEntry
	client *concur.Client
	// requestToken or refreshToken (at most one) bootstraps the engine with
	// a grant; with neither the stored tokens are kept.
	requestToken, refreshToken concur.Secret
	// refreshBase is where an imported refresh token is checked: its
	// geolocation when given, else base_url.
	refreshBase string
}

func (c configChange) bootstraps() bool { return !c.requestToken.IsZero() || !c.refreshToken.IsZero() }

// bootstrapField names the field a bootstrap grant's failure is about.
func (c configChange) bootstrapField() string {
	if !c.requestToken.IsZero() {
		return "request_token"
	}
	return "refresh_token"
}

// configure stores c, after obtaining tokens from Concur when it bootstraps
// (detached from ctx, like every grant), and returns the new state.
func (ts *tokenStore) configure(ctx context.Context, s logical.Storage, c configChange) (*engineState, error) {
	var out *engineState
	err := ts.run(ctx, "", func(gctx context.Context) error {
		snap, err := ts.latest(gctx, s)
		if err != nil {
			return err
		}
		next := &engineState{Config: c.config}
		switch {
		case c.bootstraps():
			tok, err := ts.bootstrapGrant(gctx, c)
			if err != nil {
				return err
			}
			next = ts.withToken(next, tok, c.client.AllowedHosts())
		case snap.state != nil:
			next.Token = snap.state.Token
		default:
			next.Token.Status = statusNeedsBootstrap
		}
		if err := ts.save(gctx, s, next, c.client, c.bootstraps()); err != nil {
			return err
		}
		out = next
		return nil
	})
	if err != nil {
		return nil, err // out may still be written by the job: do not read it
	}
	return out, nil
}

// bootstrapGrant exchanges the request token, or checks the refresh token
// with a grant. No marker: the token presented is not the stored one, so no
// other instance can be presenting it.
func (ts *tokenStore) bootstrapGrant(ctx context.Context, c configChange) (*concur.Token, error) {
	cfg := c.config
	var tok *concur.Token
	var err error
	if !c.requestToken.IsZero() {
		tok, err = c.client.ExchangeRequestToken(ctx, cfg.BaseURL, cfg.credentials(), cfg.CompanyUUID, c.requestToken)
		ts.b.metrics.grant(grantExchange, err)
	} else {
		tok, err = c.client.Refresh(ctx, c.refreshBase, cfg.credentials(), c.refreshToken)
		ts.b.metrics.grant(grantRefresh, err)
	}
	if err != nil {
		return nil, err
	}
	if err := checkBootstrapSubject(tok, cfg.CompanyUUID); err != nil {
		return nil, err
	}
	if tok.RefreshToken.IsZero() {
		// Without a refresh token the engine could serve for an hour and then nothing.
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf(
			"%s: Concur's answer carried no refresh token (correlation id %s); nothing was stored", c.bootstrapField(), tok.CorrelationID))
	}
	return tok, nil
}

// remove deletes settings and tokens, once no token call is in flight.
func (ts *tokenStore) remove(ctx context.Context, s logical.Storage) error {
	return ts.run(ctx, "", func(gctx context.Context) error {
		if err := s.Delete(gctx, stateStorageKey); err != nil {
			return err
		}
		ts.publish(nil, nil, false)
		return nil
	})
}
