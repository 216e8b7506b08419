package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

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
	// defaultCleanWait bounds how long Clean waits for grants in flight.
	defaultCleanWait = 5 * time.Second

	// minServeTTL: a read refreshes instead of handing out a token with less
	// life than this left, when it can.
	minServeTTL = time.Minute
	// readGrantSpacing: what reads ask for (min_ttl) is capped so that a
	// fresh token satisfies them for at least this long (or half the
	// token's lifetime, if Concur issues shorter ones).
	readGrantSpacing = 5 * time.Minute

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

	// maxConcurrentGrants bounds the mount's Concur token calls in flight
	// (Concur's rate limits are per app); maxGrantsPerPass bounds the
	// periodic renewals one pass starts, the rest waiting for the next pass.
	maxConcurrentGrants = 4
	maxGrantsPerPass    = 100
)

// errAppUnsaved: a company's tokens are stored, the app's settings that
// obtained them are not yet; they are held in memory and written first by
// the next token call or periodic pass.
var errAppUnsaved = errors.New("the company's tokens are stored; the app's settings are not yet (the write is retried)")

// errClosed: Clean ran; this instance makes no more Concur calls.
var errClosed = logical.CodedError(http.StatusServiceUnavailable,
	"the Concur engine is shutting down on this node (unmount, seal, step-down or plugin reload); try again")

// tokenStore is the mount's state: the app's settings, its companies, the
// schedule of their renewals, and what the app may do at Concur right now
// (grant slots, a slow-down after a 429, a refusal of its credentials).
// Each company keeps its own tokens and lock (see company). Only the
// store's methods take its locks.
type tokenStore struct {
	b *backend
	// instance names this backend instance in its write-ahead markers.
	instance  string
	cleanWait time.Duration
	// grantSlots holds one token per Concur token call in flight.
	grantSlots chan struct{}
	// listMu serialises loading every company (loadAll).
	listMu sync.Mutex

	mu        sync.RWMutex
	appLoaded bool
	app       appView // entry nil: not configured
	// appUnsaved: app was adopted by a grant but storage has not accepted it.
	appUnsaved bool
	// legacy is v0.1.0's default company, on a node that may not write
	// storage and so cannot upgrade it.
	legacy    *companyEntry
	companies map[string]*company
	// listed: every stored company is in companies and on the schedule.
	listed   bool
	schedule schedule
	// slowUntil: Concur answered 429; background token calls wait till then.
	slowUntil time.Time
	// clientRefused: Concur refused the app's client credentials; background
	// token calls wait for a config write.
	clientRefused string
	// lastRejected is when a token Concur refused at an API was last renewed.
	lastRejected time.Time
	closed       bool
	// closing is closed by close: waits for a grant slot end with it.
	closing chan struct{}
}

func newTokenStore(b *backend) *tokenStore {
	return &tokenStore{b: b, instance: newInstanceID(), cleanWait: defaultCleanWait,
		grantSlots: make(chan struct{}, maxConcurrentGrants), companies: map[string]*company{}, closing: make(chan struct{})}
}

// loadApp returns the app's settings, reading storage the first time and
// upgrading a v0.1.0 layout on a node that may write.
func (ts *tokenStore) loadApp(ctx context.Context, s logical.Storage) (appView, error) {
	ts.mu.RLock()
	if ts.appLoaded {
		app := ts.app
		ts.mu.RUnlock()
		return app, nil
	}
	ts.mu.RUnlock()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.appLoaded {
		return ts.app, nil
	}
	entry, legacy, err := ts.readApp(ctx, s)
	if err != nil {
		return appView{}, err
	}
	var app appView
	if entry != nil {
		if app.client, err = ts.b.newConcurClient(entry.AllowedHosts); err != nil {
			return appView{}, fmt.Errorf("stored allowed_hosts: %w", err)
		}
		app.entry = entry
	}
	ts.app, ts.legacy, ts.appLoaded = app, legacy, true
	return app, nil
}

// readApp reads the app entry, upgrading v0.1.0's single entry when this
// node may write; otherwise the legacy company is returned to be served
// from memory.
func (ts *tokenStore) readApp(ctx context.Context, s logical.Storage) (*appEntry, *companyEntry, error) {
	var old legacyState
	hasLegacy, err := getJSON(ctx, s, legacyStorageKey, &old)
	if err != nil {
		return nil, nil, err
	}
	if hasLegacy && ts.foreignGrantLive(&old.Token) {
		return nil, nil, logical.CodedError(http.StatusServiceUnavailable, fmt.Sprintf(
			"an earlier instance of the engine has a Concur token call in flight; the storage upgrade waits for it (until %s)",
			old.Token.Grant.Until.UTC().Format(time.RFC3339)))
	}
	if hasLegacy && ts.b.writeSafe() {
		app, err := upgradeLegacy(ctx, s, &old)
		if err != nil {
			return nil, nil, fmt.Errorf("upgrading the v0.1.0 storage layout: %w", err)
		}
		ts.b.Logger().Info("storage upgraded from the v0.1.0 layout (settings and the default company in their own entries)")
		return app, nil, nil
	}
	var app appEntry
	found, err := getJSON(ctx, s, appStorageKey, &app)
	switch {
	case err != nil:
		return nil, nil, err
	case found:
		return &app, nil, nil
	case hasLegacy:
		co := &companyEntry{CompanyUUID: old.Config.CompanyUUID, Prewarm: true, Token: old.Token}
		return &old.Config.appEntry, co, nil
	}
	return nil, nil, nil
}

func (ts *tokenStore) currentApp() appView {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return ts.app
}

func (ts *tokenStore) legacyDefault() *companyEntry {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return ts.legacy
}

// forgetApp drops the cached settings so the next use reloads them.
func (ts *tokenStore) forgetApp() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if !ts.appUnsaved {
		ts.appLoaded, ts.app, ts.legacy = false, appView{}, nil
	}
}

// saveApp stores the app's settings and makes them current.
func (ts *tokenStore) saveApp(ctx context.Context, s logical.Storage, app appView) error {
	if err := putJSON(ctx, s, appStorageKey, app.entry); err != nil {
		return err
	}
	ts.publishApp(app, false)
	return nil
}

// adoptApp makes app current before it is stored: a grant made with it
// issued tokens, and they must be renewable with the settings that got
// them even if storage refuses the write for a while (see flushApp).
func (ts *tokenStore) adoptApp(app appView) { ts.publishApp(app, true) }

// publishApp makes app current. New settings end a refusal of the old
// credentials: the next token call tries them.
func (ts *tokenStore) publishApp(app appView, unsaved bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.app, ts.appLoaded, ts.appUnsaved, ts.clientRefused = app, true, unsaved, ""
}

// flushApp writes adopted settings storage has not accepted yet.
func (ts *tokenStore) flushApp(ctx context.Context, s logical.Storage) error {
	ts.mu.RLock()
	app, unsaved := ts.app, ts.appUnsaved
	ts.mu.RUnlock()
	if !unsaved {
		return nil
	}
	if err := putJSON(ctx, s, appStorageKey, app.entry); err != nil {
		return fmt.Errorf("%w: %w", errAppUnsaved, err)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.app.entry == app.entry {
		ts.appUnsaved = false
	}
	return nil
}

// removeApp deletes the app's settings.
func (ts *tokenStore) removeApp(ctx context.Context, s logical.Storage) error {
	if err := s.Delete(ctx, appStorageKey); err != nil {
		return err
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.app, ts.appLoaded, ts.legacy = appView{}, true, nil
	return nil
}

// company is the named company's state machine (created on first use; its
// entry is loaded from storage by its own methods).
func (ts *tokenStore) company(name string) *company {
	ts.mu.RLock()
	co := ts.companies[name]
	ts.mu.RUnlock()
	if co != nil {
		return co
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if co = ts.companies[name]; co == nil {
		co = newCompany(name, ts)
		ts.companies[name] = co
	}
	return co
}

// lookup is the named company if it exists, in memory or in storage (nil
// if not). A probe for a company that does not exist is not kept, so reads
// of made-up names cost no memory.
func (ts *tokenStore) lookup(ctx context.Context, s logical.Storage, name string) (*company, error) {
	ts.mu.RLock()
	co := ts.companies[name]
	ts.mu.RUnlock()
	if co == nil {
		return ts.probe(ctx, s, name)
	}
	v, err := co.load(ctx, s)
	if err != nil || v.entry == nil {
		return nil, err
	}
	return co, nil
}

// probe reads a company not in memory and keeps it only if it exists (see
// lookup); the map is written only then, not on every read.
func (ts *tokenStore) probe(ctx context.Context, s logical.Storage, name string) (*company, error) {
	co := newCompany(name, ts)
	v, err := co.load(ctx, s)
	if err != nil || v.entry == nil {
		return nil, err
	}
	ts.mu.Lock()
	known := ts.companies[name]
	if known == nil {
		ts.companies[name] = co
	}
	ts.mu.Unlock()
	if known != nil {
		return known, nil
	}
	co.reschedule() // a probe stays off the schedule until it is kept
	return co, nil
}

// defaultCompany is the company of the root paths.
func (ts *tokenStore) defaultCompany() *company { return ts.company(defaultCompanyName) }

// loadAll reads every stored company once, for the schedule and for list.
// Later changes reach memory through the companies' own writes and
// Invalidate.
func (ts *tokenStore) loadAll(ctx context.Context, s logical.Storage) error {
	// The app first: it upgrades a v0.1.0 layout, whose default company is
	// not among companies/ until then.
	if _, err := ts.loadApp(ctx, s); err != nil {
		return err
	}
	ts.listMu.Lock()
	defer ts.listMu.Unlock()
	ts.mu.RLock()
	listed := ts.listed
	ts.mu.RUnlock()
	if listed {
		return nil
	}
	names, err := s.List(ctx, companyStoragePrefix)
	if err != nil {
		return fmt.Errorf("listing companies in storage: %w", err)
	}
	if ts.legacyDefault() != nil {
		names = append(names, defaultCompanyName)
	}
	for _, name := range names {
		if !validCompanyName(name) {
			ts.b.Logger().Warn("ignoring a storage entry that is not a company name", "key", companyStoragePrefix+truncate(name, 64))
			continue
		}
		if _, err := ts.company(name).load(ctx, s); err != nil {
			return err
		}
	}
	ts.mu.Lock()
	ts.listed = true
	ts.mu.Unlock()
	return nil
}

// names lists the companies that exist, sorted.
func (ts *tokenStore) names(ctx context.Context, s logical.Storage) ([]string, error) {
	if err := ts.loadAll(ctx, s); err != nil {
		return nil, err
	}
	ts.mu.RLock()
	all := make([]*company, 0, len(ts.companies))
	for _, co := range ts.companies {
		all = append(all, co)
	}
	ts.mu.RUnlock()
	var names []string
	for _, co := range all {
		v, err := co.load(ctx, s)
		if err != nil {
			return nil, err
		}
		if v.entry != nil {
			names = append(names, co.name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// views are the companies that exist, by name (metrics).
func (ts *tokenStore) views(ctx context.Context, s logical.Storage) (map[string]companyView, error) {
	if app, err := ts.loadApp(ctx, s); err != nil || app.entry == nil {
		return nil, err
	}
	if err := ts.loadAll(ctx, s); err != nil {
		return nil, err
	}
	out := map[string]companyView{}
	for _, co := range ts.loadedCompanies() {
		if v := co.current(); v.entry != nil {
			out[co.name] = v
		}
	}
	return out, nil
}

// loadedCompanies are the companies in memory.
func (ts *tokenStore) loadedCompanies() []*company {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	out := make([]*company, 0, len(ts.companies))
	for _, co := range ts.companies {
		out = append(out, co)
	}
	return out
}

// reschedule puts co on the schedule at the time its view is next due (or
// takes it off). Only the company kept in memory is scheduled: a probe for
// a name (see lookup) must not move the real company's entry.
func (ts *tokenStore) reschedule(co *company, v companyView) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.companies[co.name] != co {
		return
	}
	margin := defaultRefreshMargin
	if ts.app.entry != nil {
		margin = ts.app.entry.RefreshMargin
	}
	ts.schedule.set(co.name, v.dueAt(co.name, margin, ts.b.now()))
}

// forgetCompany drops a company's cached entry (Invalidate): it is read
// again on its next use, a list included, so a company another node just
// created or deleted shows as such without reading every company again.
func (ts *tokenStore) forgetCompany(name string) {
	ts.company(name).forget()
}

// renewDue is the periodic renewal: the companies due on the schedule are
// renewed, at most maxGrantsPerPass per pass and maxConcurrentGrants at a
// time. One company's failure does not stop the others.
func (ts *tokenStore) renewDue(ctx context.Context, s logical.Storage) error {
	app, err := ts.loadApp(ctx, s)
	if err != nil || app.entry == nil {
		return err
	}
	if err := ts.loadAll(ctx, s); err != nil {
		return err
	}
	if err := ts.flushApp(ctx, s); err != nil {
		return err
	}
	now := ts.b.now()
	ts.mu.Lock()
	due := ts.schedule.popDue(now, maxGrantsPerPass)
	ts.mu.Unlock()
	if until := ts.pausedUntil(now); !until.IsZero() {
		ts.deferDue(ctx, s, due, until)
		return nil
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		starts = make(chan struct{}, maxConcurrentGrants)
	)
	for _, name := range due {
		co := ts.company(name)
		starts <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-starts; wg.Done() }()
			if err := co.renewIfDue(ctx, s, app.entry.RefreshMargin); err != nil {
				ts.b.Logger().Warn("periodic renewal of a company's Concur token failed", "company", name, "error", err)
				mu.Lock()
				errs = append(errs, fmt.Errorf("company %s: %w", name, err))
				mu.Unlock()
			}
			co.reschedule()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// deferDue puts due companies back on the schedule at until, while the
// app's token calls are paused; tokens storage has not accepted yet are
// written meanwhile (that needs storage, not Concur).
func (ts *tokenStore) deferDue(ctx context.Context, s logical.Storage, due []string, until time.Time) {
	for _, name := range due {
		co := ts.company(name)
		if err := co.saveUnsaved(ctx, s); err != nil {
			ts.b.Logger().Error("writing unsaved Concur tokens failed", "company", name, "error", err)
		}
		ts.mu.Lock()
		ts.schedule.set(name, until)
		ts.mu.Unlock()
	}
}

// pausedUntil is when the app's paused background token calls may resume
// (zero: not paused): the end of a 429 slow-down, or after a refusal of
// its credentials the next look, backoffMax later.
func (ts *tokenStore) pausedUntil(now time.Time) time.Time {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	switch {
	case now.Before(ts.slowUntil):
		return ts.slowUntil
	case ts.clientRefused != "":
		return now.Add(backoffMax)
	}
	return time.Time{}
}

// takeGrantSlot waits for one of the mount's grant slots; call release
// when the token call and its write are done.
func (ts *tokenStore) takeGrantSlot(ctx context.Context) (release func(), err error) {
	select {
	case <-ts.closing:
		return nil, errClosed
	default:
	}
	select {
	case ts.grantSlots <- struct{}{}:
		if ts.isClosed() { // Clean ran while this call waited
			<-ts.grantSlots
			return nil, errClosed
		}
		return func() { <-ts.grantSlots }, nil
	case <-ts.closing:
		return nil, errClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for one of the mount's %d Concur token calls in flight: %w", maxConcurrentGrants, ctx.Err())
	}
}

// noteGrantResult makes the whole mount wait after Concur said the app is
// calling too often (429) or refused its client credentials; a grant that
// succeeded shows the credentials work again.
func (ts *tokenStore) noteGrantResult(err error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var ce *concur.Error
	switch {
	case err == nil:
		ts.clientRefused = ""
	case !errors.As(err, &ce):
	case ce.StatusCode == http.StatusTooManyRequests:
		// As long as the company that got the 429 backs off after its first failure.
		ts.slowUntil = latestOf(ts.slowUntil, ts.b.now().Add(backoff(1, err)))
		ts.b.Logger().Warn("Concur asked the app to slow down (429); background token calls of every company wait",
			"until", ts.slowUntil.UTC().Format(time.RFC3339))
	case concur.RefusesClient(err):
		ts.clientRefused = ce.Error()
	}
}

// grantsPaused says why token calls not asked for by an operator may not be
// made now.
func (ts *tokenStore) grantsPaused() error {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	if now := ts.b.now(); now.Before(ts.slowUntil) {
		return logical.CodedError(http.StatusTooManyRequests, fmt.Sprintf(
			"Concur asked this app to slow down (HTTP 429); no token calls before %s", ts.slowUntil.UTC().Format(time.RFC3339)))
	}
	if ts.clientRefused != "" {
		return logical.CodedError(http.StatusBadGateway, "Concur refused the app's client_id or client_secret; "+
			"token calls wait for a config write with the right ones: "+ts.clientRefused)
	}
	return nil
}

// lastRejectedRenewal and noteRejectedRenewal keep when a token Concur
// refused at an API was last renewed, for the whole mount.
func (ts *tokenStore) lastRejectedRenewal() time.Time {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return ts.lastRejected
}

func (ts *tokenStore) noteRejectedRenewal() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.lastRejected = ts.b.now()
}

func (ts *tokenStore) isClosed() bool {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return ts.closed
}

// close ends this instance's use of Concur (Clean): no new token calls;
// calls in flight are waited for (at most cleanWait in all), and tokens
// storage has not accepted yet are written while it still answers. Vault
// may have cancelled ctx already; the wait and the writes are bounded on
// their own.
func (ts *tokenStore) close(ctx context.Context, s logical.Storage) {
	ts.mu.Lock()
	if !ts.closed {
		ts.closed = true
		close(ts.closing)
	}
	ts.mu.Unlock()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ts.cleanWait)
	defer cancel()
	var wg sync.WaitGroup
	for _, co := range ts.loadedCompanies() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			co.close(wctx, s)
		}()
	}
	wg.Wait()
	if s != nil {
		if err := ts.flushApp(wctx, s); err != nil {
			ts.b.Logger().Error("writing the app's settings at shutdown failed", "error", err)
		}
	}
	ts.forgetApp()
}

// companyPath is the API path of a company's leaf (creds, ...; "" for the
// company itself), as events name it.
func companyPath(name, leaf string) string {
	switch {
	case name == defaultCompanyName && leaf == "":
		return "config"
	case name == defaultCompanyName:
		return leaf
	case leaf == "":
		return "companies/" + name
	}
	return strings.Join([]string{"companies", name, leaf}, "/")
}
