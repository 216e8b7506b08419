package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// defaultCompanyKey is where the default company's entry is stored.
var defaultCompanyKey = companyStorageKey(defaultCompanyName)

// view is the named company's state in memory (empty: not in memory).
func (b *backend) view(name string) companyView {
	for _, co := range b.companies.loaded() {
		if co.name == name {
			return co.current()
		}
	}
	return companyView{}
}

// defaultEntry is the default company's entry in memory (nil: none).
func (b *backend) defaultEntry() *companyEntry { return b.view(defaultCompanyName).entry }

// refreshMargin is the app's refresh margin.
func (b *backend) refreshMargin() time.Duration { return b.app.current().entry.RefreshMargin }

// remaining is how long e's access token stays valid.
func (b *backend) remaining(e *companyEntry) time.Duration {
	if e == nil || e.Token.AccessToken == "" {
		return 0
	}
	return e.Token.ExpiresAt.Sub(b.now())
}

// idle waits until no company has a token call in flight.
func (b *backend) idle() {
	for _, co := range b.companies.loaded() {
		co.idle()
	}
}

// forget drops everything cached, as Invalidate of every key would.
func (b *backend) forget() {
	b.app.forget()
	for _, co := range b.companies.loaded() {
		b.companies.forget(co.name)
	}
}

// inMemory are the names of the companies in memory.
func (b *backend) inMemory() []string {
	var out []string
	for _, co := range b.companies.loaded() {
		out = append(out, co.name)
	}
	return out
}

// storedCompany reads a company's stored entry.
func storedCompany(s logical.Storage, name string) (companyEntry, bool) {
	var e companyEntry
	found, _ := getJSON(context.Background(), s, companyStorageKey(name), &e)
	return e, found
}

// scheduledAt is when the named company is next due on the schedule (zero: not on it).
func (b *backend) scheduledAt(name string) time.Time {
	b.companies.mu.RLock()
	defer b.companies.mu.RUnlock()
	if it, ok := b.companies.schedule.index[name]; ok {
		return it.due
	}
	return time.Time{}
}

// setCleanWait bounds how long Clean waits for grants in flight.
func (b *backend) setCleanWait(d time.Duration) { b.cleanWait = d }
