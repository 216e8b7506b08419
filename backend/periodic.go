package backend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

// wireState builds the mount's three owners of state and what a company
// gets from them.
func (b *backend) wireState() {
	logger := func() hclog.Logger { return b.Logger() }
	b.instance, b.cleanWait = newInstanceID(), defaultCleanWait
	b.gate = newGrantGate(b.now, logger)
	b.app = &appCache{newClient: b.newConcurClient, writeSafe: b.writeSafe, log: logger, now: b.now, changed: b.appChanged}
	b.companies = newRegistry(b.newCompany, logger)
}

func (b *backend) newCompany(name string) *company {
	return newCompany(name, companyDeps{
		now: b.now, log: func() hclog.Logger { return b.Logger() }, metrics: b.metrics, app: b.app, gate: b.gate,
		writeSafe: b.writeSafe, instance: b.instance, due: b.companies.due, hold: b.companies.hold, renewed: b.renewalDone,
	})
}

// appChanged follows a change of the app's settings: new credentials end a
// refusal of the old ones, and a new refresh_margin moves every company's
// next renewal.
func (b *backend) appChanged(old, next appView) {
	if old.entry == next.entry {
		return
	}
	b.gate.appChanged()
	if marginOf(old) == marginOf(next) {
		return
	}
	for _, co := range b.companies.loaded() {
		co.reschedule()
	}
}

func marginOf(app appView) time.Duration {
	if app.entry == nil {
		return defaultRefreshMargin
	}
	return app.entry.RefreshMargin
}

// loadAll loads the app and then every stored company (the app first: it
// upgrades a v0.1.0 layout, whose default company is not among companies/
// until then).
func (b *backend) loadAll(ctx context.Context, s logical.Storage) (appView, error) {
	app, err := b.app.load(ctx, s)
	if err != nil {
		return appView{}, err
	}
	return app, b.companies.loadAll(ctx, s, b.app.legacyDefault() != nil)
}

// companyNames lists the companies that exist, sorted.
func (b *backend) companyNames(ctx context.Context, s logical.Storage) ([]string, error) {
	if _, err := b.app.load(ctx, s); err != nil {
		return nil, err
	}
	return b.companies.names(ctx, s, b.app.legacyDefault() != nil)
}

// companyViews are the companies that exist, by name (metrics).
func (b *backend) companyViews(ctx context.Context, s logical.Storage) (map[string]companyView, error) {
	app, err := b.loadAll(ctx, s)
	if err != nil || app.entry == nil {
		return nil, err
	}
	return b.companies.views(), nil
}

// renewDue is the periodic renewal: the companies due on the schedule are
// renewed, at most maxGrantsPerPass per pass and maxConcurrentGrants at a
// time. One company's failure does not stop the others.
func (b *backend) renewDue(ctx context.Context, s logical.Storage) error {
	app, err := b.loadAll(ctx, s)
	if err != nil && app.entry == nil {
		return err
	}
	if err != nil { // some companies could not be read: the others go on
		b.Logger().Warn("reading some companies failed; renewing the others", "error", err)
	}
	if app.entry == nil {
		return nil
	}
	if err := b.gate.do(func() error { return b.app.flush(ctx, s) }); err != nil {
		return err
	}
	now := b.now()
	due := b.companies.popDue(now, maxGrantsPerPass)
	if until := b.gate.pausedUntil(now); !until.IsZero() {
		b.deferDue(ctx, s, due, until)
		return nil
	}
	return b.renewAll(ctx, s, due)
}

// renewAll renews the due companies, maxConcurrentGrants at a time.
func (b *backend) renewAll(ctx context.Context, s logical.Storage, due []*company) error {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		starts = make(chan struct{}, maxConcurrentGrants)
	)
	for _, co := range due {
		starts <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-starts; wg.Done() }()
			if err := co.renewIfDue(ctx, s); err != nil {
				b.Logger().Warn("periodic renewal of a company's Concur token failed", "company", co.name, "error", err)
				mu.Lock()
				errs = append(errs, fmt.Errorf("company %s: %w", co.name, err))
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
func (b *backend) deferDue(ctx context.Context, s logical.Storage, due []*company, until time.Time) {
	for _, co := range due {
		if err := co.saveUnsaved(ctx, s); err != nil {
			b.Logger().Error("writing unsaved Concur tokens failed", "company", co.name, "error", err)
		}
		b.companies.deferTo(co, until)
	}
}

// lookup is the named company if it exists (nil if not), after the app:
// before the v0.1.0 layout is upgraded, the default company comes with it.
func (b *backend) lookup(ctx context.Context, s logical.Storage, name string) (*company, error) {
	if _, err := b.app.load(ctx, s); err != nil {
		return nil, err
	}
	return b.companies.lookup(ctx, s, name)
}
