package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// holdingStorage holds the first read of key until release is closed.
type holdingStorage struct {
	logical.Storage
	key           string
	once          sync.Once
	read, release chan struct{}
}

func (s *holdingStorage) Get(ctx context.Context, k string) (*logical.StorageEntry, error) {
	e, err := s.Storage.Get(ctx, k)
	if k == s.key {
		held := false
		s.once.Do(func() { held = true })
		if held {
			close(s.read)
			<-s.release
		}
	}
	return e, err
}

func (e *testEnv) scheduled(name string) bool {
	e.b.companies.mu.RLock()
	defer e.b.companies.mu.RUnlock()
	_, on := e.b.companies.schedule.index[name]
	return on
}

// A read of a company that does not exist yet, racing its creation, must
// not take the new company off the schedule (it would never get a
// keep-alive).
func TestReadRacingACreationKeepsItScheduled(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	hs := &holdingStorage{Storage: e.storage, key: companyStorageKey("x"), read: make(chan struct{}), release: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "companies/x/creds", Storage: hs})
	}()
	<-hs.read // the read found no x
	e.connect("x", 7, "")
	close(hs.release)
	<-done
	if !e.scheduled("x") {
		t.Fatal("x is off the schedule after the racing read")
	}
	last := e.companyEntry("x").Token.LastRefreshAt
	for range 40 {
		e.clock.Advance(24 * time.Hour)
		_ = e.periodic()
	}
	if e.companyEntry("x").Token.LastRefreshAt.Equal(last) {
		t.Errorf("no keep-alive grant for x in 40 days")
	}
}

// LIST as the first request after a v0.1.0 upgrade still schedules the
// default company.
func TestListFirstAfterUpgradeSchedulesDefault(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	live := e.asV010Layout()
	s := e.storage
	fresh := e.newInstance()
	resp, err := requestOn(fresh, s, logical.ListOperation, "companies/", nil)
	if err != nil || fmt.Sprint(resp.Data["keys"]) != "[default]" {
		t.Fatalf("list after the upgrade: %v %v", resp, err)
	}
	for range 60 {
		e.clock.Advance(time.Minute)
		_ = fresh.periodicFunc(context.Background(), &logical.Request{Storage: s})
	}
	if co, _ := storedCompany(s, defaultCompanyName); !co.Token.LastRefreshAt.After(live.Token.LastRefreshAt) {
		t.Errorf("the prewarmed default company was not renewed within its hour")
	}
}

// A token call waiting for a grant slot when Clean runs never calls Concur.
func TestNoTokenCallWaitsOutClean(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	g := e.b.gate
	for range maxConcurrentGrants { // every slot busy
		g.slots <- struct{}{}
	}
	got := make(chan error, 1)
	go func() {
		release, err := g.takeSlot(context.Background())
		if release != nil {
			release()
		}
		got <- err
	}()
	e.b.clean(context.Background())
	<-g.slots // a slot frees after Clean
	if err := <-got; !errors.Is(err, errClosed) {
		t.Errorf("a waiting token call after Clean: %v, want errClosed", err)
	}
}

// A config write whose new client_secret Concur refuses stores nothing and
// leaves the app's stored credentials (and every company) working.
func TestRefusedNewSecretDoesNotPauseTheMount(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.connect("acme", 1, "")
	resp, err := e.request(logical.UpdateOperation, "config", map[string]any{"client_secret": "a-typo",
		"company_uuid": testCompany, "request_token": e.sim.NewRequestToken(testClientID, testCompany)})
	if err == nil && !resp.IsError() {
		t.Fatal("a write with a wrong client_secret succeeded")
	}
	if p := e.b.gate.paused(); p != nil {
		t.Errorf("the mount is paused by a refused write that stored nothing: %v", p)
	}
	e.clock.Advance(time.Hour)
	if _, err := e.request(logical.ReadOperation, "companies/acme/creds", nil); err != nil {
		t.Errorf("acme creds after the refused write: %v", err)
	}
}

// Settings a bootstrap obtained tokens with, refused by storage after the
// company was stored, are written by the next periodic pass.
func TestAdoptedAppIsWrittenByTheNextPass(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	e.storage.failAfterMarker(1) // the company's write passes, the app's fails
	_, err := e.request(logical.UpdateOperation, "config", map[string]any{"refresh_margin": 1200,
		"company_uuid": testCompany, "request_token": e.sim.NewRequestToken(testClientID, testCompany)})
	if err == nil || !strings.Contains(err.Error(), "tokens are stored") {
		t.Errorf("write with the app's settings refused by storage: %v, want an error saying the tokens are stored", err)
	}
	_ = e.periodic()
	var app appEntry
	if _, _ = getJSON(context.Background(), e.storage, appStorageKey, &app); app.RefreshMargin != 20*time.Minute {
		t.Errorf("stored refresh_margin %s after a pass; in memory %s", app.RefreshMargin, e.b.refreshMargin())
	}
}

// Renewals after Concur refused an access token at an API are bounded per
// company: each company whose reads Concur refuses renews once in the
// window, and one such company does not stop another from replacing its
// refused token (item 3 of issue 18; on main the window was the mount's,
// and the second and third companies never renewed).
func TestRejectedRenewalWindowIsPerCompany(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{Users: 2})
	e.sim.AddClient(testClientID, testClientSecret, "openid") // no identity.user.* scope
	grants := e.sim.GrantCalls("refresh_token")
	users := map[string]string{}
	for i, n := range []string{"a", "b", "c"} {
		uuid := e.connect(n, i+1, "")
		users[n] = e.sim.Users(uuid)[0].ID
		_, _ = e.request(logical.ReadOperation, "companies/"+n+"/profile/"+users[n], nil)
	}
	if got := e.sim.GrantCalls("refresh_token") - grants; got != 3 {
		t.Errorf("%d renewals for three companies' refused reads, want one each", got)
	}
	grants = e.sim.GrantCalls("refresh_token")
	_, err := e.request(logical.ReadOperation, "companies/a/profile/"+users["a"], nil)
	if got := e.sim.GrantCalls("refresh_token") - grants; got != 0 || codeOf(err) != 403 {
		t.Errorf("a second refused read of a within the window: %d renewals, %v; want none and a 403 naming the scope", got, err)
	}
}
