package backend

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Tests of issue 18: one company's trouble never reaches another company
// or grows the mount. Each fails on the code before the token store was
// split into its owners.

// seriesCompanies are the company label values of the mount's metrics,
// every company named (as metrics_detail=full would), after a scrape.
func (e *testEnv) seriesCompanies(b *backend) []string {
	e.t.Helper()
	if _, err := requestOn(b, e.storage, logical.ReadOperation, "metrics", nil); err != nil {
		e.t.Errorf("metrics: %v", err)
	}
	families, err := b.metrics.gather(b.companies.views(), metricsDetailFull, b.now())
	if err != nil {
		e.t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "company" {
					seen[l.GetValue()] = true
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// storedNames are the companies storage holds.
func (e *testEnv) storedNames() []string {
	e.t.Helper()
	names, err := e.storage.List(context.Background(), companyStoragePrefix)
	if err != nil {
		e.t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// assertMemoryFollowsStorage: the companies in memory are the stored ones,
// and a scrape naming every company names none that is not stored.
func (e *testEnv) assertMemoryFollowsStorage(b *backend) {
	e.t.Helper()
	stored := e.storedNames()
	mem := b.inMemory()
	sort.Strings(mem)
	if !slices.Equal(mem, stored) {
		e.t.Errorf("%d companies in memory, %d stored (memory must follow storage)", len(mem), len(stored))
	}
	var strays []string
	for _, name := range e.seriesCompanies(b) {
		if !slices.Contains(stored, name) {
			strays = append(strays, name)
		}
	}
	if len(strays) > 0 {
		e.t.Errorf("%d metric label values name companies that are not stored (first: %s)", len(strays), strays[0])
	}
}

// Item 1: failed onboarding writes, deletes of names that never existed,
// invalidations and reads of unknown names leave no company in memory and
// no metric series behind.
func TestFailedWritesLeaveNoCompanyOrSeries(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	e.connect("acme", 1, "")
	for i := range 200 {
		name := fmt.Sprintf("onboard-%d", i)
		resp, err := e.request(logical.CreateOperation, "companies/"+name, map[string]any{
			"company_uuid": companyUUID(1000 + i), "request_token": "not-a-request-token"})
		if err == nil && !resp.IsError() {
			t.Fatalf("a write with a made-up request token succeeded")
		}
	}
	for i := range 50 {
		e.mustOK(logical.DeleteOperation, fmt.Sprintf("companies/never-%d", i), nil)
		e.b.invalidate(context.Background(), companyStorageKey(fmt.Sprintf("elsewhere-%d", i)))
		_, _ = e.request(logical.ReadOperation, fmt.Sprintf("companies/nobody-%d/creds", i), nil)
	}
	e.assertMemoryFollowsStorage(e.b)
	if keys := e.mustOK(logical.ListOperation, "companies/", nil).Data["keys"]; fmt.Sprint(keys) != "[acme]" {
		t.Errorf("list = %v", keys)
	}
	e.mustOK(logical.ReadOperation, "companies/acme/creds", nil)
}

// putRaw stores value under key as it is, as a sys/raw edit or a damaged
// entry would leave it.
func (e *testEnv) putRaw(key, value string) {
	e.t.Helper()
	if err := e.storage.Put(context.Background(), &logical.StorageEntry{Key: key, Value: []byte(value)}); err != nil {
		e.t.Fatal(err)
	}
}

// Item 2: a stored company entry that cannot be decoded costs only that
// company: the others are renewed and listed, metrics and config writes
// work, and the entry is shown, logged and deletable.
func TestUndecodableEntryCostsOnlyItsCompany(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.connect("a", 1, "")
	e.mustOK(logical.UpdateOperation, "companies/a", map[string]any{"prewarm": true})
	e.connect("b", 2, "")
	e.putRaw(companyStorageKey("bad"), `{"company_uuid": "x", "prewarm": "yes"}`)
	fresh := e.newInstance() // loads everything from storage
	on := func(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
		return requestOn(fresh, e.storage, op, path, data)
	}
	before, _ := storedCompany(e.storage, "a")
	e.clock.Advance(55 * time.Minute)
	if err := fresh.periodicFunc(context.Background(), &logical.Request{Storage: e.storage}); err != nil {
		t.Errorf("periodic pass: %v", err)
	}
	if after, _ := storedCompany(e.storage, "a"); !after.Token.LastRefreshAt.After(before.Token.LastRefreshAt) {
		t.Errorf("a's kept-ready token was not renewed next to an undecodable entry")
	}
	if resp, err := on(logical.ListOperation, "companies/", nil); err != nil || fmt.Sprint(resp.Data["keys"]) != "[a b bad]" {
		t.Errorf("list: %v %v", resp, err)
	}
	resp, err := on(logical.ReadOperation, "companies/bad", nil)
	if err != nil || resp.Data["status"] != statusUnreadable || !strings.Contains(fmt.Sprint(resp.Data["last_error"]), "prewarm") {
		t.Errorf("read of the undecodable company: %v %v, want status unreadable naming the field", resp, err)
	}
	if _, err := on(logical.ReadOperation, "companies/bad/creds", nil); codeOf(err) != http.StatusInternalServerError ||
		!strings.Contains(err.Error(), "cannot be decoded") {
		t.Errorf("creds of the undecodable company: %v", err)
	}
	for _, path := range []string{"metrics", "companies/b/creds"} {
		if _, err := on(logical.ReadOperation, path, nil); err != nil {
			t.Errorf("%s next to an undecodable entry: %v", path, err)
		}
	}
	if _, err := on(logical.UpdateOperation, "config", map[string]any{"refresh_margin": 900}); err != nil {
		t.Errorf("an app-only config write next to an undecodable entry: %v", err)
	}
	if !strings.Contains(e.logs.String(), "cannot be decoded") {
		t.Errorf("the undecodable entry was not logged")
	}
	if _, err := on(logical.DeleteOperation, "companies/bad", nil); err != nil {
		t.Errorf("delete of the undecodable company: %v", err)
	}
	if raw, _ := e.storage.Get(context.Background(), companyStorageKey("bad")); raw != nil {
		t.Errorf("the undecodable entry is still stored after its delete")
	}
}

// Item 2, the default company: config read shows it, config delete works.
func TestUndecodableDefaultCompanyCanBeDeletedWithConfig(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	e.putRaw(defaultCompanyKey, `{not json`)
	fresh := e.newInstance()
	resp, err := requestOn(fresh, e.storage, logical.ReadOperation, "config", nil)
	if err != nil || resp.Data["status"] != statusUnreadable {
		t.Errorf("config read with an undecodable default company: %v %v", resp, err)
	}
	if _, err := requestOn(fresh, e.storage, logical.DeleteOperation, "config", nil); err != nil {
		t.Errorf("config delete with an undecodable default company: %v", err)
	}
	if keys, _ := e.storage.List(context.Background(), ""); len(keys) != 0 {
		t.Errorf("storage after config delete: %v", keys)
	}
}

// Item 4: a marker whose deadline lies beyond what any grant takes (a
// clock ahead) is live for at most maxMarkerLife after it is first seen,
// said in the log; then the operator's re-bootstrap write and delete, and
// the engine's renewals, go ahead.
func TestMarkerFromAClockAheadIsCapped(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	uuid := e.connect("ahead", 1, "")
	e.connect("gone", 2, "")
	for _, name := range []string{"ahead", "gone"} {
		st, _ := storedCompany(e.storage, name)
		st.Token.Grant = &grantMarker{RefreshToken: tokenFingerprint(st.Token.RefreshToken),
			Until: e.clock.Now().Add(time.Hour + maxMarkerLife), Instance: "a-node-an-hour-ahead"}
		if err := putJSON(context.Background(), e.storage, companyStorageKey(name), &st); err != nil {
			t.Fatal(err)
		}
	}
	fresh := e.newInstance()
	reconnect := map[string]any{"company_uuid": uuid, "request_token": e.sim.NewRequestToken(testClientID, uuid)}
	if _, err := requestOn(fresh, e.storage, logical.UpdateOperation, "companies/ahead", reconnect); codeOf(err) != 503 {
		t.Fatalf("re-bootstrap under a just-seen marker: %v, want 503", err)
	}
	if _, err := requestOn(fresh, e.storage, logical.DeleteOperation, "companies/gone", nil); codeOf(err) != 503 {
		t.Fatalf("delete under a just-seen marker: %v, want 503", err)
	}
	if !strings.Contains(e.logs.String(), "later than any token call lasts") {
		t.Errorf("the capped marker was not logged")
	}
	e.clock.Advance(maxMarkerLife + time.Second)
	if _, err := requestOn(fresh, e.storage, logical.UpdateOperation, "companies/ahead", reconnect); err != nil {
		t.Errorf("re-bootstrap once the capped marker ended: %v", err)
	}
	if _, err := requestOn(fresh, e.storage, logical.DeleteOperation, "companies/gone", nil); err != nil {
		t.Errorf("delete once the capped marker ended: %v", err)
	}
	if _, err := requestOn(fresh, e.storage, logical.UpdateOperation, "companies/ahead/rotate", nil); err != nil {
		t.Errorf("rotate once the capped marker ended: %v", err)
	}
	e.assertMemoryFollowsStorage(fresh)
}

// Item 4 on a v0.1.0 entry: a marker from a clock ahead never blocks the
// mount's paths, and the upgrade happens once the capped marker ends.
func TestV010MarkerFromAClockAheadBlocksNothing(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	live := e.asV010Layout()
	live.Token.Grant = &grantMarker{RefreshToken: tokenFingerprint(live.Token.RefreshToken),
		Until: e.clock.Now().Add(time.Hour + maxMarkerLife), Instance: "v010"}
	if err := putJSON(context.Background(), e.storage, legacyStorageKey, e.v010Entry(live.Token)); err != nil {
		t.Fatal(err)
	}
	fresh := e.newInstance()
	for _, req := range []struct {
		op   logical.Operation
		path string
	}{{logical.ReadOperation, "creds"}, {logical.ListOperation, "companies/"}, {logical.ReadOperation, "config"},
		{logical.ReadOperation, "metrics"}} {
		if _, err := requestOn(fresh, e.storage, req.op, req.path, nil); err != nil {
			t.Errorf("%s %s under v0.1.0's marker: %v", req.op, req.path, err)
		}
	}
	e.clock.Advance(maxMarkerLife + time.Second)
	if _, err := requestOn(fresh, e.storage, logical.ReadOperation, "creds", nil); err != nil {
		t.Errorf("creds once the capped marker ended: %v", err)
	}
	if raw, _ := e.storage.Get(context.Background(), legacyStorageKey); raw != nil {
		t.Errorf("the v0.1.0 entry was not upgraded once the capped marker ended")
	}
}

// Item 5: a grant job that took its slot before Clean and was held up past
// Clean's wait neither calls Concur nor writes storage once Clean returned.
func TestNothingCallsConcurOrWritesAfterClean(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	e.b.setCleanWait(20 * time.Millisecond)
	hs := &holdingStorage{Storage: e.storage, key: defaultCompanyKey, read: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "rotate", Storage: hs})
		done <- err
	}()
	<-hs.read // the rotate job holds its slot and reads the company
	e.b.Cleanup(context.Background())
	calls, puts := e.sim.Calls(concurtest.EndpointToken), e.storage.putCount()
	stored, _ := storedCompany(e.storage, defaultCompanyName)
	close(hs.release)
	if err := <-done; codeOf(err) != http.StatusServiceUnavailable {
		t.Errorf("the rotate cut off by Clean: %v, want 503 (shutting down)", err)
	}
	if got := e.sim.Calls(concurtest.EndpointToken) - calls; got != 0 {
		t.Errorf("%d token calls after Clean returned", got)
	}
	if got := e.storage.putCount() - puts; got != 0 {
		t.Errorf("%d storage writes after Clean returned", got)
	}
	if after, _ := storedCompany(e.storage, defaultCompanyName); after.Token.RefreshToken != stored.Token.RefreshToken {
		t.Errorf("the stored refresh token changed after Clean returned")
	}
}

// Item 6: raising refresh_margin moves the schedule, and creds' ttl agrees
// with it.
func TestRefreshMarginChangeReschedules(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	e.mustOK(logical.UpdateOperation, "config", map[string]any{"refresh_margin": "30m"})
	expires := e.b.defaultEntry().Token.ExpiresAt
	if due := e.b.scheduledAt(defaultCompanyName); !due.Equal(expires.Add(-30 * time.Minute)) {
		t.Errorf("scheduled %s before expiry, want 30m (the new margin)", expires.Sub(due))
	}
	ttl := e.creds()["ttl"].(int64)
	if want := int64(expires.Add(-30*time.Minute).Sub(e.clock.Now()) / time.Second); ttl != want {
		t.Errorf("creds ttl %d, want %d (the schedule's due time)", ttl, want)
	}
	before := e.b.defaultEntry().Token.LastRefreshAt
	e.clock.Advance(31 * time.Minute)
	_ = e.periodic()
	if !e.b.defaultEntry().Token.LastRefreshAt.After(before) {
		t.Errorf("not renewed 29 minutes before expiry with a 30-minute margin")
	}
}
