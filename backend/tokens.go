package backend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/sync/singleflight"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

const (
	// refreshCallTimeout bounds one renewal, retries included. It is detached
	// from the caller's context: readers share the call, and one of them
	// giving up must not cancel it for the others.
	refreshCallTimeout = 60 * time.Second

	// minServeTTL: a read refreshes instead of handing out a token with less
	// life than this left, when it can.
	minServeTTL = time.Minute

	// refreshTokenMargin renews even a fresh access token when the refresh
	// token itself is this close to expiry (a safety net: every hourly
	// renewal already slides it six months forward).
	refreshTokenMargin = 7 * 24 * time.Hour

	backoffBase = 15 * time.Second
	backoffMax  = 5 * time.Minute
)

// tokenStore keeps the mount's state (settings and tokens) in memory, backed
// by one storage entry, and makes sure only one Concur token call runs at a
// time.
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

	renewMu sync.Mutex // held for each Concur token call and the write that follows
	flights singleflight.Group
}

func newTokenStore(b *backend) *tokenStore { return &tokenStore{b: b} }

// snapshot is a consistent view of the store.
type snapshot struct {
	state   *engineState
	client  *concur.Client
	unsaved bool
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
		snap := snapshot{state: ts.state, client: ts.client, unsaved: ts.unsaved}
		ts.mu.RUnlock()
		return snap, nil
	}
	ts.mu.RUnlock()

	ts.mu.Lock()
	defer ts.mu.Unlock()
	if !ts.loaded {
		var st engineState
		found, err := getJSON(ctx, s, stateStorageKey, &st)
		if err != nil {
			return snapshot{}, err
		}
		var client *concur.Client
		if found {
			if client, err = ts.b.newConcurClient(st.Config.AllowedHosts); err != nil {
				return snapshot{}, fmt.Errorf("stored allowed_hosts: %w", err)
			}
			ts.state = &st
		} else {
			ts.state = nil
		}
		ts.client, ts.loaded, ts.unsaved = client, true, false
	}
	return snapshot{state: ts.state, client: ts.client, unsaved: ts.unsaved}, nil
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

// served is what a read gets: a usable state plus warnings.
type served struct {
	state    *engineState
	client   *concur.Client
	warnings []string
}

// usable returns a state whose access token has at least need left,
// renewing it first when needed and allowed. A transient renewal failure
// still serves a token that has not expired, with a warning.
func (ts *tokenStore) usable(ctx context.Context, s logical.Storage, need time.Duration) (*served, error) {
	snap, err := ts.load(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := servable(snap.state); err != nil {
		return nil, err
	}
	if !snap.unsaved && ts.remaining(snap.state) >= need {
		return &served{state: snap.state, client: snap.client, warnings: stateWarnings(snap.state)}, nil
	}

	// A renewal is needed. Only the node that may write storage calls
	// Concur; elsewhere Vault forwards the request on ErrReadOnly.
	if !ts.b.writeSafe() {
		return nil, logical.ErrReadOnly
	}
	var renewErr error
	if snap.unsaved || !ts.b.now().Before(snap.state.Token.NextAttemptAt) {
		renewErr = ts.renewShared(ctx, s, need)
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
	out := &served{state: snap.state, client: snap.client, warnings: stateWarnings(snap.state)}
	if left < need && renewErr == nil && snap.state.Token.LastError == "" {
		out.warnings = append(out.warnings, fmt.Sprintf("the token has %d seconds left, less than asked for: Concur issues shorter-lived tokens", int(left.Seconds())))
	}
	return out, nil
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

// renewShared renews once for all concurrent callers.
func (ts *tokenStore) renewShared(ctx context.Context, s logical.Storage, need time.Duration) error {
	ch := ts.flights.DoChan("renew", func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshCallTimeout)
		defer cancel()
		return nil, ts.renew(rctx, s, need, false)
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
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
	need := st.Config.RefreshMargin
	if refreshDue && !accessDue {
		need = 24 * time.Hour // due for the refresh token's sake: renew whatever the access token's age
	}
	err = ts.renewShared(ctx, s, need)
	if err != nil {
		ts.b.Logger().Warn("periodic renewal of the Concur token failed", "error", err)
	}
	return err
}

// refreshTokenDue: the refresh token nears its expiry.
func refreshTokenDue(st *engineState, now time.Time) bool {
	exp := st.Token.RefreshExpiresAt
	return !exp.IsZero() && exp.Sub(now) < refreshTokenMargin
}

// rotate renews now, whatever the token's age: the operator asked for it.
func (ts *tokenStore) rotate(ctx context.Context, s logical.Storage) (*engineState, error) {
	if err := ts.renew(ctx, s, 0, true); err != nil {
		return nil, err
	}
	snap, err := ts.load(ctx, s)
	if err != nil {
		return nil, err
	}
	return snap.state, nil
}

// renew performs one refresh grant and stores the result. need is the
// access-token life the caller wants; a renewal that another caller already
// made is not repeated unless force is set.
func (ts *tokenStore) renew(ctx context.Context, s logical.Storage, need time.Duration, force bool) error {
	acquired := ts.b.metrics.waitingForGrant()
	ts.renewMu.Lock()
	acquired()
	defer ts.renewMu.Unlock()
	return ts.renewLocked(ctx, s, func(st *engineState) bool {
		return force || ts.remaining(st) < need || need <= 0
	}, force)
}

// renewRejected renews after Concur refused accessToken before its expiry,
// unless another caller already replaced it.
func (ts *tokenStore) renewRejected(ctx context.Context, s logical.Storage, accessToken string) error {
	ch := ts.flights.DoChan("renew-rejected", func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshCallTimeout)
		defer cancel()
		acquired := ts.b.metrics.waitingForGrant()
		ts.renewMu.Lock()
		acquired()
		defer ts.renewMu.Unlock()
		return nil, ts.renewLocked(rctx, s, func(st *engineState) bool {
			return st.Token.AccessToken == accessToken
		}, false)
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// renewLocked does the refresh grant when stillNeeded says so. The caller
// holds renewMu.
func (ts *tokenStore) renewLocked(ctx context.Context, s logical.Storage, stillNeeded func(*engineState) bool, ignoreStatus bool) error {
	snap, err := ts.load(ctx, s)
	if err != nil {
		return err
	}
	st := snap.state
	if st == nil {
		return errNotConfigured()
	}
	// First make storage hold the newest tokens we have. Refreshing again
	// from older stored ones could burn a rotated refresh token.
	if snap.unsaved {
		if err := ts.save(ctx, s, st, snap.client, true); err != nil {
			return fmt.Errorf("%s: %w", msgUnsaved, err)
		}
		snap.unsaved = false
	}
	if !ignoreStatus {
		if err := servable(st); err != nil {
			return err
		}
	}
	if !stillNeeded(st) {
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

	host := st.Token.Geolocation
	if host == "" {
		host = st.Config.BaseURL
	}
	started := time.Now()
	tok, err := snap.client.Refresh(ctx, host, st.Config.credentials(), concur.NewSecret(st.Token.RefreshToken))
	ts.b.renewalDone(ctx, time.Since(started), err)
	if err != nil {
		ts.recordFailure(ctx, s, snap, err)
		return err
	}
	return ts.save(ctx, s, ts.withToken(st, tok, snap.client.AllowedHosts()), snap.client, true)
}

// withToken is st after Concur issued tok: the refresh token, its expiry and
// the geolocation (if allow admits it) are taken from the response before
// the access token is ever served.
func (ts *tokenStore) withToken(st *engineState, tok *concur.Token, allow *concur.HostAllowList) *engineState {
	next := *st
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
	t.LastRefreshAt = ts.b.now()
	t.Status, t.LastError, t.LastErrorAt, t.Failures, t.NextAttemptAt = statusOK, "", time.Time{}, 0, time.Time{}
	if geo := tok.Geolocation; geo != "" && geo != t.Geolocation {
		if err := allow.Check(geo); err != nil {
			// Never send tokens where the operator did not allow; keep
			// the old host and say so.
			t.LastError = fmt.Sprintf("Concur named geolocation %q, which allowed_hosts does not allow; still using %q", geo, t.Geolocation)
			t.LastErrorAt = ts.b.now()
		} else {
			t.Geolocation = geo
		}
	}
	if tok.UnusableGeolocation != "" {
		t.LastError = fmt.Sprintf("Concur named geolocation %q, which is not a usable URL; still using %q", tok.UnusableGeolocation, t.Geolocation)
		t.LastErrorAt = ts.b.now()
	}
	if t.Geolocation == "" {
		t.Geolocation = st.Config.BaseURL
	}
	return &next
}

// recordFailure notes a failed renewal: permanent errors wait for an
// operator, transient ones back off.
func (ts *tokenStore) recordFailure(ctx context.Context, s logical.Storage, snap snapshot, cause error) {
	next := *snap.state
	t := &next.Token
	now := ts.b.now()
	t.LastError, t.LastErrorAt = cause.Error(), now
	if refusedForGood(cause) {
		t.Status, t.NextAttemptAt = statusNeedsBootstrap, time.Time{}
		ts.b.Logger().Error("Concur refused the refresh token; the engine needs a new company token (write concur/config)", "error", cause)
	} else {
		t.Status = statusDegraded
		t.Failures++
		wait := backoffBase << min(t.Failures-1, 10)
		var ce *concur.Error
		if errors.As(cause, &ce) && ce.HasRetryAfter && ce.RetryAfter > wait {
			wait = ce.RetryAfter
		}
		t.NextAttemptAt = now.Add(min(wait, backoffMax))
		ts.b.Logger().Warn("renewing the Concur token failed; backing off", "error", cause, "retry_at", t.NextAttemptAt.Format(time.RFC3339))
	}
	// The bookkeeping is worth storing but not worth failing over: if the
	// write fails the state still changes in memory.
	if err := ts.save(ctx, s, &next, snap.client, false); err != nil {
		ts.publish(&next, snap.client, snap.unsaved)
	}
}

func errText(err error) string {
	if err == nil {
		return "no error recorded"
	}
	return err.Error()
}

// refusedForGood reports whether Concur itself refused the refresh token or
// the app (bad or revoked token, disabled app, wrong secret): only a new
// company token can help. Trouble on our side of the call (a redirect loop, a
// host off the allow-list) is not that: it backs off and retries, since the
// tokens themselves may be fine.
func refusedForGood(err error) bool { return concur.RefusedForGood(err) }
