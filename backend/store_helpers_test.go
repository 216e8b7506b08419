package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// defaultCompanyKey is where the default company's entry is stored.
var defaultCompanyKey = companyStorageKey(defaultCompanyName)

// defaultEntry is the default company's entry in memory (nil: none).
func (ts *tokenStore) defaultEntry() *companyEntry { return ts.defaultCompany().current().entry }

// refreshMargin is the app's refresh margin.
func (ts *tokenStore) refreshMargin() time.Duration { return ts.currentApp().entry.RefreshMargin }

// remaining is how long e's access token stays valid.
func (ts *tokenStore) remaining(e *companyEntry) time.Duration {
	return ts.defaultCompany().remaining(e)
}

// idle waits until no company has a token call in flight.
func (ts *tokenStore) idle() {
	for _, co := range ts.loadedCompanies() {
		co.idle()
	}
}

// forget drops everything cached, as Invalidate of every key would.
func (ts *tokenStore) forget() {
	ts.forgetApp()
	for _, co := range ts.loadedCompanies() {
		ts.forgetCompany(co.name)
	}
}

// storedCompany reads a company's stored entry.
func storedCompany(s logical.Storage, name string) (companyEntry, bool) {
	var e companyEntry
	found, _ := getJSON(context.Background(), s, companyStorageKey(name), &e)
	return e, found
}
