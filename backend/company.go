package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/sync/singleflight"
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
)

// companyDeps is what a company needs from the mount: no pointer back to
// the mount itself.
type companyDeps struct {
	now       func() time.Time
	log       func() hclog.Logger
	metrics   *metrics
	app       *appCache
	gate      *grantGate
	writeSafe func() bool
	// instance names this backend instance in its write-ahead markers.
	instance string
	// due is told the company's next renewal time (zero: none) and whether
	// it exists, on every change of its state, under the company's lock.
	due func(co *company, at time.Time, exists bool)
	// hold keeps the company in memory while a write or grant job runs.
	hold func(co *company) (release func())
	// renewed reports a renewal grant's outcome (metrics, event).
	renewed func(ctx context.Context, name string, took time.Duration, err error)
}

// company is one connected company and the renewal state machine around
// its tokens: one Concur token call at a time (grantLock), each detached
// from the request that asked for it, each under a write-ahead marker in
// storage, each result stored before its access token is served. Only its
// own methods take its locks.
type company struct {
	name string
	deps companyDeps

	mu     sync.RWMutex
	loaded bool
	entry  *companyEntry // nil: no such company; never modified once published
	// unsaved: entry holds tokens Concur issued that storage has not yet
	// accepted. They are the only copy of the newest refresh token, so they
	// are kept, written before anything else, and not served until written.
	unsaved bool
	// unreadable: the stored entry exists but cannot be decoded (why).
	unreadable string
	// lastRejected is when a token Concur refused at an API was last renewed.
	lastRejected time.Time
	markerSeen   markerSighting

	// grantLock is held for each Concur token call and the write that
	// follows (a channel, so that waiting for it can give up).
	grantLock chan struct{}
	flights   singleflight.Group
}

func newCompany(name string, deps companyDeps) *company {
	return &company{name: name, deps: deps, grantLock: make(chan struct{}, 1)}
}

// companyView is a consistent view of a company.
type companyView struct {
	entry      *companyEntry
	unsaved    bool
	unreadable string
}

// exists: storage holds the company (readable or not), or memory holds
// tokens for it that storage has yet to accept.
func (v companyView) exists() bool { return v.entry != nil || v.unsaved || v.unreadable != "" }

func (co *company) log() hclog.Logger { return co.deps.log().With("company", co.name) }

func (co *company) current() companyView {
	co.mu.RLock()
	defer co.mu.RUnlock()
	return co.viewLocked()
}

func (co *company) viewLocked() companyView {
	return companyView{entry: co.entry, unsaved: co.unsaved, unreadable: co.unreadable}
}

// forget drops the cached entry so the next use reloads it from storage.
// Unsaved tokens are kept: storage does not have them.
func (co *company) forget() {
	co.mu.Lock()
	defer co.mu.Unlock()
	if !co.unsaved {
		co.loaded = false
	}
}

// load returns the cached entry, reading storage the first time.
func (co *company) load(ctx context.Context, s logical.Storage) (companyView, error) {
	co.mu.RLock()
	if co.loaded {
		v := co.viewLocked()
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
		co.rescheduleLocked()
	}
	return co.viewLocked(), nil
}

// reschedule tells the registry the company's next renewal time.
func (co *company) reschedule() {
	co.mu.RLock()
	defer co.mu.RUnlock()
	co.rescheduleLocked()
}

// rescheduleLocked is reschedule with mu held, so that the schedule always
// follows the newest state.
func (co *company) rescheduleLocked() {
	v := co.viewLocked()
	co.deps.due(co, v.due(co.name, co.deps.app.margin(), co.deps.now()), v.exists())
}

// readLocked replaces the cached entry by what storage holds. An entry
// that cannot be decoded costs this company only: it is shown as such,
// and can be deleted or written again. The caller holds mu.
func (co *company) readLocked(ctx context.Context, s logical.Storage) error {
	raw, err := s.Get(ctx, companyStorageKey(co.name))
	if err != nil {
		return fmt.Errorf("reading %s from storage: %w", companyStorageKey(co.name), err)
	}
	co.entry, co.unsaved, co.unreadable = nil, false, ""
	switch {
	case raw != nil:
		var e companyEntry
		if err := raw.DecodeJSON(&e); err != nil {
			co.unreadable = decodeProblem(err)
			co.log().Error("the company's stored entry cannot be decoded; only this company is affected "+
				"(delete it, or write it again with a new request_token)", "problem", co.unreadable)
		} else {
			co.entry = &e
		}
	case co.name == defaultCompanyName:
		co.entry = co.deps.app.legacyDefault() // before the v0.1.0 layout is upgraded
	}
	// While another instance's grant is in flight, storage is read on each
	// use: that instance stores its result there any moment.
	co.loaded = co.entry == nil || !co.foreignGrantLiveLocked(&co.entry.Token)
	return nil
}

// decodeProblem says why an entry cannot be decoded, without quoting any of
// its values (they may be secrets).
func decodeProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON (at byte %d)", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s holds a JSON %s, not a %s", typ.Field, typ.Value, typ.Type)
	}
	return fmt.Sprintf("a value of the wrong form (%T)", err)
}

// latest is the entry a grant builds on, read while holding grantLock:
// unsaved tokens are written first (refreshing from older stored ones could
// burn a rotated refresh token); otherwise storage is read again, since
// another instance of the engine (before a reload or a step-down) may have
// stored newer tokens since this one cached them.
func (co *company) latest(ctx context.Context, s logical.Storage) (companyView, error) {
	if err := co.deps.gate.do(func() error { return co.deps.app.flush(ctx, s) }); err != nil {
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
	defer co.mu.Unlock()
	if err := co.readLocked(ctx, s); err != nil {
		return companyView{}, err
	}
	co.rescheduleLocked()
	return co.viewLocked(), nil
}

// publish makes v current in memory.
func (co *company) publish(v companyView) {
	co.mu.Lock()
	defer co.mu.Unlock()
	co.entry, co.loaded, co.unsaved, co.unreadable = v.entry, true, v.unsaved, v.unreadable
	co.rescheduleLocked()
}

// put writes e as the company's entry, unless Clean has cut this instance off.
func (co *company) put(ctx context.Context, s logical.Storage, e *companyEntry) error {
	return co.deps.gate.do(func() error { return putJSON(ctx, s, companyStorageKey(co.name), e) })
}

// saveIssued writes e, which carries tokens Concur issued, and publishes
// it. When the write fails e is still published, as unsaved, so the newest
// refresh token is not lost.
func (co *company) saveIssued(ctx context.Context, s logical.Storage, e *companyEntry) error {
	if err := co.put(ctx, s, e); err != nil {
		co.publish(companyView{entry: e, unsaved: true})
		co.log().Error("storing tokens Concur issued failed; keeping them in memory and retrying the write", "error", err)
		return err
	}
	co.publish(companyView{entry: e})
	return nil
}

// saveState writes e, which carries no new token, and publishes it.
func (co *company) saveState(ctx context.Context, s logical.Storage, e *companyEntry) error {
	if err := co.put(ctx, s, e); err != nil {
		return err
	}
	co.publish(companyView{entry: e})
	return nil
}

// run does job holding grantLock and one of the mount's grant slots, in its
// own goroutine and with its own deadline, so that the job (a Concur call
// and the write that stores its result) finishes whatever the caller does
// (Clean aside); the caller waits only while its context lasts. Jobs with
// the same non-empty flight share one run.
func (co *company) run(ctx context.Context, flight string, job func(context.Context) error) error {
	// Held while the caller waits and while the job runs, which may outlast it.
	release := co.deps.hold(co)
	defer release()
	work := func() (any, error) {
		jobDone := co.deps.hold(co)
		defer jobDone()
		detached, stop := co.deps.gate.jobContext(ctx)
		defer stop()
		err := co.runLocked(detached, job)
		if err != nil && detached.Err() != nil {
			return nil, errClosed // cut off by Clean: say so, not what the cut broke
		}
		return nil, err
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

// runLocked takes grantLock and a grant slot, then runs job under
// grantTimeout.
func (co *company) runLocked(detached context.Context, job func(context.Context) error) error {
	lctx, cancel := context.WithTimeout(detached, lockTimeout)
	defer cancel()
	acquired := co.deps.metrics.waitingForGrant()
	select {
	case co.grantLock <- struct{}{}:
		acquired()
	case <-lctx.Done():
		acquired()
		return fmt.Errorf("waiting for the Concur token call in flight: %w", lctx.Err())
	}
	defer func() { <-co.grantLock }()
	release, err := co.deps.gate.takeSlot(lctx)
	if err != nil {
		return err
	}
	defer release()
	gctx, cancelGrant := context.WithTimeout(detached, grantTimeout)
	defer cancelGrant()
	return job(gctx)
}

// close waits (until ctx ends) for a token call in flight and writes
// tokens storage has not accepted yet (Clean).
func (co *company) close(ctx context.Context, s logical.Storage) {
	select {
	case co.grantLock <- struct{}{}:
		defer func() { <-co.grantLock }()
	case <-ctx.Done():
		co.log().Warn("a Concur token call is still in flight at shutdown; it is cut off, and its outcome is not stored")
		return
	}
	if v := co.current(); v.unsaved && s != nil {
		if err := co.saveIssued(ctx, s, v.entry); err != nil {
			co.log().Error("writing unsaved Concur tokens at shutdown failed; they are lost with this instance", "error", err)
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
	return e.Token.ExpiresAt.Sub(co.deps.now())
}
