package backend

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

// registry is the mount's companies in memory and the schedule of their
// renewals. Memory follows storage: a company is kept while it is stored
// (or holds tokens storage has yet to accept) and while a write or a grant
// job of it runs; a failed write, a delete or a read of a name that does
// not exist leaves nothing behind, metric series included. Only its own
// methods take its locks; it never calls a company while holding them.
type registry struct {
	newCompany func(name string) *company
	log        func() hclog.Logger

	// listMu serialises loading every company (loadAll).
	listMu sync.Mutex

	mu      sync.RWMutex
	members map[string]*member
	// listed: every stored company is in members, except the names in
	// unlisted, which changed elsewhere (Invalidate) and are read at the
	// next list.
	listed   bool
	unlisted map[string]struct{}
	schedule schedule
	// gone counts companies dropped from memory and changes heard of for
	// companies not in memory: a probe that read storage before one of
	// them may hold an entry that is no longer stored.
	gone uint64
}

// member is a company in memory and what keeps it there.
type member struct {
	co *company
	// holds counts the writes and grant jobs of the company under way.
	holds int
	// exists: the company's last published state exists (see companyView.exists);
	// known: it has published one.
	exists, known bool
}

func newRegistry(newCompany func(string) *company, log func() hclog.Logger) *registry {
	return &registry{newCompany: newCompany, log: log, members: map[string]*member{},
		unlisted: map[string]struct{}{}}
}

// lookup is the named company if it exists, in memory or in storage (nil
// if not). A probe for a company that does not exist is not kept.
func (r *registry) lookup(ctx context.Context, s logical.Storage, name string) (*company, error) {
	r.mu.RLock()
	m := r.members[name]
	r.mu.RUnlock()
	if m == nil {
		return r.probe(ctx, s, name)
	}
	v, err := m.co.load(ctx, s)
	if err != nil || !v.exists() {
		return nil, err
	}
	return m.co, nil
}

// probe reads a company not in memory and keeps it only if it exists (see
// lookup); the map is written only then, not on every read.
func (r *registry) probe(ctx context.Context, s logical.Storage, name string) (*company, error) {
	r.mu.RLock()
	gone := r.gone
	r.mu.RUnlock()
	co := r.newCompany(name)
	v, err := co.load(ctx, s) // off the schedule: not a member yet
	if err != nil || !v.exists() {
		return nil, err
	}
	r.mu.Lock()
	known := r.members[name]
	stale := known == nil && r.gone != gone // a delete may have run since the read
	if known == nil && !stale {
		r.members[name] = &member{co: co, exists: true, known: true}
		delete(r.unlisted, name)
	}
	r.mu.Unlock()
	switch {
	case known != nil:
		return known.co, nil
	case stale:
		return r.readHeld(ctx, s, name)
	}
	co.reschedule()
	return co, nil
}

// readHeld reads the named company as a member, as a write does, so that
// no delete runs between the read and the keeping (see probe).
func (r *registry) readHeld(ctx context.Context, s logical.Storage, name string) (*company, error) {
	co, release := r.acquire(name)
	defer release()
	v, err := co.load(ctx, s)
	if err != nil || !v.exists() {
		return nil, err
	}
	return co, nil
}

// acquire is the named company for a write, kept in memory until release
// is called (and after, if it then exists).
func (r *registry) acquire(name string) (*company, func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[name]
	if m == nil {
		m = &member{co: r.newCompany(name)}
		r.members[name] = m
	}
	m.holds++
	return m.co, r.releaser(m)
}

// hold keeps co in memory while a job of it runs (see company.run).
func (r *registry) hold(co *company) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[co.name]
	switch {
	case m == nil: // dropped while the job was starting: back in while it runs
		m = &member{co: co, known: true}
		r.members[co.name] = m
	case m.co != co: // a probe that was not kept
		return func() {}
	}
	m.holds++
	return r.releaser(m)
}

func (r *registry) releaser(m *member) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			m.holds--
			r.dropIfGoneLocked(m)
			r.mu.Unlock()
		})
	}
}

// dropIfGoneLocked takes m out of memory once nothing keeps it there (the
// caller holds mu) and says whether it did.
func (r *registry) dropIfGoneLocked(m *member) bool {
	name := m.co.name
	if m.holds > 0 || m.exists || r.members[name] != m {
		return false
	}
	delete(r.members, name)
	r.gone++
	r.schedule.set(name, time.Time{})
	if !m.known && r.listed {
		r.unlisted[name] = struct{}{} // never read: storage may hold it
	}
	return true
}

// due puts co on the schedule at at (zero: off it), or drops it from memory
// once it no longer exists. Companies not kept (probes) are ignored.
func (r *registry) due(co *company, at time.Time, exists bool) {
	r.mu.Lock()
	m := r.members[co.name]
	if m == nil || m.co != co {
		r.mu.Unlock()
		return
	}
	m.exists, m.known = exists, true
	if !r.dropIfGoneLocked(m) {
		r.schedule.set(co.name, at)
	}
	r.mu.Unlock()
}

// deferTo puts co back on the schedule at until (the app's calls are paused).
func (r *registry) deferTo(co *company, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.members[co.name]; m != nil && m.co == co {
		r.schedule.set(co.name, until)
	}
}

// popDue takes up to limit companies due at now off the schedule.
func (r *registry) popDue(now time.Time, limit int) []*company {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*company
	for _, name := range r.schedule.popDue(now, limit) {
		if m := r.members[name]; m != nil {
			out = append(out, m.co)
		}
	}
	return out
}

// forget drops a company's cached entry (Invalidate): it is read again on
// its next use, a list included, so a company another node just created or
// deleted shows as such without reading every company again.
func (r *registry) forget(name string) {
	r.mu.Lock()
	m := r.members[name]
	if m == nil {
		r.gone++
		if r.listed {
			r.unlisted[name] = struct{}{}
		}
	}
	r.mu.Unlock()
	if m != nil {
		m.co.forget()
	}
}

// loaded are the companies in memory.
func (r *registry) loaded() []*company {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*company, 0, len(r.members))
	for _, m := range r.members {
		out = append(out, m.co)
	}
	return out
}

// loadAll reads every stored company once, for the schedule and for list
// (withDefault: v0.1.0's default company, not among companies/ yet). Later
// changes reach memory through the companies' own writes and Invalidate.
// A company storage fails to give is left for the next call; the others
// are loaded.
func (r *registry) loadAll(ctx context.Context, s logical.Storage, withDefault bool) error {
	r.listMu.Lock()
	defer r.listMu.Unlock()
	names, err := r.toLoad(ctx, s, withDefault)
	if err != nil {
		return err
	}
	var errs []error
	var failed []string
	for _, name := range names {
		if !validCompanyName(name) {
			r.log().Warn("ignoring a storage entry that is not a company name", "key", companyStoragePrefix+truncate(name, 64))
			continue
		}
		if _, err := r.lookup(ctx, s, name); err != nil {
			errs = append(errs, fmt.Errorf("company %s: %w", name, err))
			failed = append(failed, name)
		}
	}
	if len(errs) > 0 {
		r.mu.Lock()
		for _, name := range failed { // toLoad took them off unlisted: read them again next time
			r.unlisted[name] = struct{}{}
		}
		r.mu.Unlock()
		return errors.Join(errs...)
	}
	r.mu.Lock()
	r.listed = true
	r.mu.Unlock()
	return nil
}

// toLoad are the names loadAll reads: every stored one the first time,
// then those changed elsewhere since.
func (r *registry) toLoad(ctx context.Context, s logical.Storage, withDefault bool) ([]string, error) {
	r.mu.Lock()
	listed := r.listed
	var names []string
	for name := range r.unlisted {
		names = append(names, name)
	}
	r.unlisted = map[string]struct{}{}
	r.mu.Unlock()
	if listed {
		return names, nil
	}
	names, err := s.List(ctx, companyStoragePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing companies in storage: %w", err)
	}
	if withDefault {
		names = append(names, defaultCompanyName)
	}
	return names, nil
}

// names lists the companies that exist, sorted.
func (r *registry) names(ctx context.Context, s logical.Storage, withDefault bool) ([]string, error) {
	if err := r.loadAll(ctx, s, withDefault); err != nil {
		return nil, err
	}
	var names []string
	for _, co := range r.loaded() {
		v, err := co.load(ctx, s)
		if err != nil {
			return nil, err
		}
		if v.exists() {
			names = append(names, co.name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// views are the companies that exist, by name.
func (r *registry) views() map[string]companyView {
	out := map[string]companyView{}
	for _, co := range r.loaded() {
		if v := co.current(); v.exists() {
			out[co.name] = v
		}
	}
	return out
}
