package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// A request that reaches its storage write only after Clean returned (it
// was in flight when Clean ran; a request sent to the old instance after
// Clean takes the same steps) must not write: the next instance owns
// storage and, on CE, never hears of a write it did not make (no
// Invalidate), so an app-only config write landing now would leave it
// running with the old settings while storage holds the new ones.
func TestAppOnlyConfigWriteAfterCleanWritesNothing(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	e.b.Cleanup(context.Background())
	puts := e.storage.putCount()
	_, err := e.request(logical.UpdateOperation, "config", map[string]any{"refresh_margin": 900})
	if codeOf(err) != http.StatusServiceUnavailable {
		t.Errorf("an app-only config write after Clean: %v, want 503 (shutting down)", err)
	}
	if got := e.storage.putCount() - puts; got != 0 {
		t.Errorf("%d storage writes after Clean returned", got)
	}
}

// revoke=true asks Concur to end the company's connection: a state change
// at Concur, which after Clean is the next instance's to make (or not).
func TestRevokeAfterCleanCallsNothing(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	e.connect("acme", 1, "")
	e.b.Cleanup(context.Background())
	calls := e.sim.Calls(concurtest.EndpointConnections)
	_, err := e.request(logical.DeleteOperation, "companies/acme", map[string]any{"revoke": true})
	if codeOf(err) != http.StatusServiceUnavailable {
		t.Errorf("a delete with revoke=true after Clean: %v, want 503 (shutting down)", err)
	}
	if got := e.sim.Calls(concurtest.EndpointConnections) - calls; got != 0 {
		t.Errorf("%d revocations sent to Concur after Clean returned", got)
	}
	if _, found := storedCompany(e.storage, "acme"); !found {
		t.Errorf("the company was deleted after Clean returned")
	}
}

// getFailingStorage fails reads of one key while failing is set.
type getFailingStorage struct {
	logical.Storage
	key     string
	failing bool
}

func (s *getFailingStorage) Get(ctx context.Context, k string) (*logical.StorageEntry, error) {
	if s.failing && k == s.key {
		return nil, errors.New("storage unavailable")
	}
	return s.Storage.Get(ctx, k)
}

// A company created elsewhere (heard of through Invalidate, as a
// performance standby does) whose first read fails is read again by the
// next list, as loadAll promises, instead of vanishing from lists and
// metrics until someone reads it by name.
func TestCompanyWhoseReadFailedIsListedNextTime(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	e.connect("acme", 1, "")
	standby := e.newInstance()
	s := &getFailingStorage{Storage: e.storage, key: companyStorageKey("elsewhere")}
	list := func() (string, error) {
		resp, err := requestOn(standby, s, logical.ListOperation, "companies/", nil)
		if err != nil {
			return "", err
		}
		return fmt.Sprint(resp.Data["keys"]), nil
	}
	if keys, err := list(); err != nil || keys != "[acme]" {
		t.Fatalf("first list: %s %v", keys, err)
	}
	st, _ := storedCompany(e.storage, "acme")
	if err := putJSON(context.Background(), e.storage, companyStorageKey("elsewhere"), &st); err != nil {
		t.Fatal(err)
	}
	standby.invalidate(context.Background(), companyStorageKey("elsewhere"))
	s.failing = true
	if _, err := list(); err == nil {
		t.Errorf("a list while the new company's entry cannot be read succeeded")
	}
	s.failing = false
	if keys, err := list(); err != nil || keys != "[acme elsewhere]" {
		t.Errorf("list once storage answers again: %s %v, want [acme elsewhere]", keys, err)
	}
}

// A read of a company not yet in memory reads storage, then keeps the
// company: a delete that ran in between must not be undone in memory (the
// deleted company served, listed and renewed as if it existed).
func TestReadRacingADeleteDoesNotBringTheCompanyBack(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	e.connect("acme", 1, "")
	e.connect("gone", 2, "")
	fresh := e.newInstance()
	hs := &holdingStorage{Storage: e.storage, key: companyStorageKey("gone"), read: make(chan struct{}), release: make(chan struct{})}
	type result struct {
		resp *logical.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := requestOn(fresh, hs, logical.ReadOperation, "companies/gone/creds", nil)
		done <- result{resp, err}
	}()
	<-hs.read // the read has the entry in hand, not yet the company in memory
	if _, err := requestOn(fresh, e.storage, logical.DeleteOperation, "companies/gone", nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
	close(hs.release)
	<-done // served the token it read before the delete, or 404: either is an answer of its moment
	if _, err := requestOn(fresh, e.storage, logical.ReadOperation, "companies/gone/creds", nil); codeOf(err) != http.StatusNotFound {
		t.Errorf("creds of the deleted company after the race: %v, want 404", err)
	}
	resp, err := requestOn(fresh, e.storage, logical.ListOperation, "companies/", nil)
	if err != nil || fmt.Sprint(resp.Data["keys"]) != "[acme]" {
		t.Errorf("list after the race: %v %v, want [acme]", resp, err)
	}
	e.assertMemoryFollowsStorage(fresh)
}

// An entry that cannot be decoded may still hold the company's only
// refresh token (a later version's field, a damaged flag): a write without
// a new token must not replace it with a token-less entry, as it would for
// a company that does not exist. Only a new token or a delete replaces it.
func TestTokenlessWriteKeepsAnUndecodableEntry(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	uuid := e.connect("bad", 1, "")
	raw, err := e.storage.Get(context.Background(), companyStorageKey("bad"))
	if err != nil || raw == nil {
		t.Fatalf("stored entry: %v", err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw.Value, &fields); err != nil {
		t.Fatal(err)
	}
	fields["prewarm"] = "yes" // a later version's form of the field
	damaged, _ := json.Marshal(fields)
	e.putRaw(companyStorageKey("bad"), string(damaged))
	fresh := e.newInstance()
	resp, err := requestOn(fresh, e.storage, logical.UpdateOperation, "companies/bad", map[string]any{"company_uuid": uuid, "prewarm": false})
	if err == nil && !resp.IsError() {
		t.Errorf("a write without a token over an undecodable entry succeeded")
	}
	if after, _ := e.storage.Get(context.Background(), companyStorageKey("bad")); after == nil || string(after.Value) != string(damaged) {
		t.Errorf("the undecodable entry (and the refresh token in it) was replaced by a write that brought no token")
	}
}

// tokenCallHold keeps the first token request until release is closed.
type tokenCallHold struct {
	base          http.RoundTripper
	once          sync.Once
	sent, release chan struct{}
}

func (h *tokenCallHold) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/oauth2/v0/token" {
		first := false
		h.once.Do(func() { first = true })
		if first {
			close(h.sent)
			<-h.release
		}
	}
	return h.base.RoundTrip(r)
}

// A company write carries the app's settings as it found them, not new
// ones: an app-only config write (here refresh_margin; as well a new
// client_secret) made while the company's grant was under way must not be
// undone by it, in memory or in storage.
func TestCompanyWriteKeepsAConcurrentConfigWrite(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	e.connect("acme", 1, "")
	fresh := e.newInstance()
	hold := &tokenCallHold{base: e.sim.Client().Transport, sent: make(chan struct{}), release: make(chan struct{})}
	fresh.httpClient = &http.Client{Transport: hold}
	uuid := companyUUID(2)
	e.sim.AddCompany(uuid, "")
	done := make(chan error, 1)
	go func() {
		_, err := requestOn(fresh, e.storage, logical.CreateOperation, "companies/globex", map[string]any{
			"company_uuid": uuid, "request_token": e.sim.NewRequestToken(testClientID, uuid)})
		done <- err
	}()
	<-hold.sent // the company's grant is under way, with the app's settings as they were
	if _, err := requestOn(fresh, e.storage, logical.UpdateOperation, "config", map[string]any{"refresh_margin": 900}); err != nil {
		t.Fatalf("config write: %v", err)
	}
	close(hold.release)
	if err := <-done; err != nil {
		t.Fatalf("company write: %v", err)
	}
	var stored appEntry
	if _, err := getJSON(context.Background(), e.storage, appStorageKey, &stored); err != nil || stored.RefreshMargin != 900*time.Second {
		t.Errorf("stored refresh_margin %s (%v), want 15m0s: the config write was undone", stored.RefreshMargin, err)
	}
	if got := fresh.app.current().entry.RefreshMargin; got != 900*time.Second {
		t.Errorf("refresh_margin in use %s, want 15m0s: the config write was undone in memory", got)
	}
}
