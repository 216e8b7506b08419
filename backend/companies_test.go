package backend

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// partnerDataCenters: the landing zone and two data centres, so that
// companies live in different places.
var partnerDataCenters = []string{concurtest.LandingZone, "us2", "emea"}

func newPartnerEnv(t testing.TB, opts concurtest.Options) *testEnv {
	t.Helper()
	opts.DataCenters = partnerDataCenters
	if opts.Users == 0 {
		opts.Users = -1
	}
	e := newTestEnv(t, opts)
	data := e.baseConfig()
	delete(data, "company_uuid")
	e.mustOK(logical.CreateOperation, "config", data)
	return e
}

// companyUUID is the i-th test company's UUID.
func companyUUID(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) }

// connect adds the i-th company to the simulator (in the data centre
// given, "" for the home one) and connects it to the mount as name.
func (e *testEnv) connect(name string, i int, dataCenter string) string {
	e.t.Helper()
	uuid := companyUUID(i)
	e.sim.AddCompany(uuid, dataCenter)
	e.mustOK(logical.CreateOperation, "companies/"+name, map[string]any{
		"company_uuid": uuid, "request_token": e.sim.NewRequestToken(testClientID, uuid)})
	return uuid
}

func (e *testEnv) companyEntry(name string) *companyEntry {
	return e.b.view(name).entry
}

// Named companies: each has its own tokens from its own data centre, its
// own paths, and the root paths stay the default company's.
func TestNamedCompaniesEndToEnd(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate, Users: 2})
	acme := e.connect("acme", 1, "us2")
	globex := e.connect("globex", 2, "emea")

	a := e.mustOK(logical.ReadOperation, "companies/acme/creds", nil).Data
	g := e.mustOK(logical.ReadOperation, "companies/globex/creds", nil).Data
	if a["access_token"] == g["access_token"] || a["company_uuid"] != acme || g["company_uuid"] != globex {
		t.Fatalf("creds: acme %v/%v, globex %v/%v", a["company_uuid"], a["access_token"] == "", g["company_uuid"], g["access_token"] == "")
	}
	if a["geolocation"] != e.sim.URLOf("us2") || g["geolocation"] != e.sim.URLOf("emea") {
		t.Errorf("geolocations %v, %v: want each company's own data centre", a["geolocation"], g["geolocation"])
	}
	list := e.mustOK(logical.ListOperation, "companies/", nil).Data["keys"]
	if fmt.Sprint(list) != "[acme globex]" {
		t.Errorf("list = %v", list)
	}
	read := e.mustOK(logical.ReadOperation, "companies/globex", nil).Data
	if read["status"] != statusOK || read["company_uuid"] != globex || read["prewarm"] != false || read["name"] != "globex" {
		t.Errorf("companies/globex read = %v", read)
	}
	for k := range read {
		if strings.Contains(k, "secret") && k != "client_secret_set" || k == "refresh_token" || k == "access_token" {
			t.Errorf("companies read shows %s", k)
		}
	}

	// The root paths are the default company's, and there is none yet.
	if _, err := e.request(logical.ReadOperation, "creds", nil); codeOf(err) != http.StatusBadRequest {
		t.Errorf("root creds without a default company: %v, want 400 not configured", err)
	}
	if _, err := e.request(logical.ReadOperation, "companies/nobody/creds", nil); codeOf(err) != http.StatusNotFound {
		t.Errorf("creds of an unknown company: %v, want 404", err)
	}

	// rotate and profile per company.
	before := e.companyEntry("acme").Token.RefreshToken
	e.mustOK(logical.UpdateOperation, "companies/acme/rotate", nil)
	if got := e.companyEntry("acme").Token.RefreshToken; got == before || got != e.sim.CurrentRefreshToken(testClientID, acme) {
		t.Errorf("rotate did not store acme's new refresh token")
	}
	users := e.sim.Users(globex)
	prof := e.mustOK(logical.ReadOperation, "companies/globex/profile/"+users[0].ID, nil).Data["user"].(map[string]any)
	if prof["id"] != users[0].ID {
		t.Errorf("profile of globex's user: %v", prof["id"])
	}

	// Delete with revoke: only that company is gone, at Concur too.
	e.mustOK(logical.DeleteOperation, "companies/acme", map[string]any{"revoke": true})
	if e.sim.CurrentRefreshToken(testClientID, acme) != "" {
		t.Errorf("acme's connection was not revoked at Concur")
	}
	if resp, _ := e.request(logical.ReadOperation, "companies/acme", nil); resp != nil {
		t.Errorf("acme still readable after delete: %v", resp.Data)
	}
	if fmt.Sprint(e.mustOK(logical.ListOperation, "companies/", nil).Data["keys"]) != "[globex]" {
		t.Errorf("list after delete")
	}
	e.mustOK(logical.ReadOperation, "companies/globex/creds", nil)
	// config cannot be deleted while companies use the app.
	if resp, _ := e.request(logical.DeleteOperation, "config", nil); resp == nil || !resp.IsError() {
		t.Errorf("config delete with a named company left: %v, want refused", resp)
	}
}

// The default company is companies/default; config's company fields are its.
func TestDefaultCompanyIsAlsoANamedCompany(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	root := e.creds()
	named := e.mustOK(logical.ReadOperation, "companies/default/creds", nil).Data
	if root["access_token"] != named["access_token"] {
		t.Errorf("companies/default/creds is not the root creds")
	}
	if d := e.mustOK(logical.ReadOperation, "companies/default", nil).Data; d["company_uuid"] != testCompany || d["prewarm"] != true {
		t.Errorf("companies/default = %v", d)
	}
}

// Names are path segments and storage keys: only safe ones get through.
func TestCompanyNamesAreValidated(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	long := strings.Repeat("a", 65)
	resp, err := e.request(logical.CreateOperation, "companies/"+long, map[string]any{"company_uuid": companyUUID(1)})
	if err != nil || resp == nil || !resp.IsError() || !strings.HasPrefix(resp.Error().Error(), "name") {
		t.Errorf("a 65-character name: %v / %v, want a 400 naming name", resp, err)
	}
	for _, bad := range []string{"../config", "a/b", "-x", "%2e%2e"} {
		resp, err := e.request(logical.CreateOperation, "companies/"+bad, map[string]any{"company_uuid": companyUUID(1)})
		if err == nil && (resp == nil || !resp.IsError()) {
			t.Errorf("name %q accepted", bad)
		}
	}
	keys, _ := e.storage.List(context.Background(), companyStoragePrefix)
	if len(keys) != 0 {
		t.Errorf("companies stored: %v", keys)
	}
	// A company needs the app first, and its UUID.
	e2 := newTestEnv(t, concurtest.Options{})
	if resp, _ := e2.request(logical.CreateOperation, "companies/acme", map[string]any{"company_uuid": testCompany}); resp == nil ||
		!strings.Contains(resp.Error().Error(), "config") {
		t.Errorf("a company before the app: %v, want a 400 naming config", resp)
	}
	if resp, _ := e.request(logical.CreateOperation, "companies/acme", map[string]any{"prewarm": true}); resp == nil ||
		!strings.HasPrefix(resp.Error().Error(), "company_uuid") {
		t.Errorf("a company without company_uuid: %v, want a 400 naming company_uuid", resp)
	}
}

// App Center's connect flow: the partner's page gets id and requestToken
// and writes them; a re-connect replaces the company's tokens.
func TestOnboardingAndReconnect(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	uuid := companyUUID(7)
	e.sim.AddCompany(uuid, "emea")
	onboard := func() {
		e.mustOK(logical.UpdateOperation, "companies/"+uuid, map[string]any{
			"company_uuid": uuid, "request_token": e.sim.NewRequestToken(testClientID, uuid)})
	}
	onboard()
	first := e.companyEntry(uuid).Token.RefreshToken
	tok := e.mustOK(logical.ReadOperation, "companies/"+uuid+"/creds", nil).Data["access_token"]
	onboard()
	if got := e.companyEntry(uuid).Token.RefreshToken; got == first || got != e.sim.CurrentRefreshToken(testClientID, uuid) {
		t.Errorf("a re-connect did not replace the refresh token with Concur's newest")
	}
	if again := e.mustOK(logical.ReadOperation, "companies/"+uuid+"/creds", nil).Data["access_token"]; again == tok {
		t.Errorf("a re-connect kept serving the old access token")
	}
	if n := e.sim.GrantCalls("password"); n != 2 {
		t.Errorf("password grants = %d, want 2 (one per connect)", n)
	}
}

// A client-secret change on config applies to every company's next grant,
// and Concur refusing the old secret pauses the mount without sending any
// company to needs_bootstrap.
func TestClientSecretChangeAcrossCompanies(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	names := []string{"a", "b", "c"}
	for i, n := range names {
		e.connect(n, i+1, "")
	}
	// The app's secret is rotated at Concur; the engine still has the old one.
	e.sim.AddClient(testClientID, "the-new-secret-7f6e5d")
	e.clock.Advance(55 * time.Minute)
	if _, err := e.request(logical.UpdateOperation, "companies/a/rotate", nil); err == nil || !strings.Contains(err.Error(), "64") {
		t.Fatalf("rotate with the old secret: %v, want Concur's code 64", err)
	}
	calls := e.sim.Calls(concurtest.EndpointToken)
	e.clock.Advance(40 * 24 * time.Hour) // every company due for a keep-alive
	_ = e.periodic()
	if got := e.sim.Calls(concurtest.EndpointToken); got != calls {
		t.Errorf("%d token calls after Concur refused the app's secret, want none until config changes", got-calls)
	}
	for _, n := range names {
		if st := e.mustOK(logical.ReadOperation, "companies/"+n, nil).Data["status"]; st == statusNeedsBootstrap {
			t.Errorf("company %s needs_bootstrap after a client-secret refusal", n)
		}
	}
	if resp, err := e.request(logical.ReadOperation, "companies/b/creds", nil); err == nil && !resp.IsError() {
		t.Errorf("creds of an expired company while the app's secret is refused: served")
	} else if err != nil && !strings.Contains(err.Error(), "client_secret") {
		t.Errorf("creds error %v does not name client_secret", err)
	}

	e.mustOK(logical.UpdateOperation, "config", map[string]any{"client_secret": "the-new-secret-7f6e5d"})
	_ = e.periodic()
	for i, n := range names {
		if got := e.mustOK(logical.ReadOperation, "companies/"+n+"/creds", nil); got.Data["access_token"] == "" {
			t.Errorf("company %s: no token after the secret change", n)
		}
		if e.companyEntry(n).Token.RefreshToken != e.sim.CurrentRefreshToken(testClientID, companyUUID(i+1)) {
			t.Errorf("company %s lost its refresh token over the secret change", n)
		}
	}
}

// A 429 for one company slows the whole mount: no other company's
// background token call happens before the wait ends.
func Test429SlowsTheWholeMount(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	for i, n := range []string{"a", "b"} {
		e.connect(n, i+1, "")
	}
	e.mustOK(logical.UpdateOperation, "companies/b", map[string]any{"prewarm": true})
	e.clock.Advance(51 * time.Minute) // b's kept-ready token is within its 10-minute margin
	e.sim.InjectFault(concurtest.EndpointToken, 10, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 429, RetryAfter: "600"})
	if _, err := e.request(logical.UpdateOperation, "companies/a/rotate", nil); codeOf(err) != http.StatusTooManyRequests {
		t.Fatalf("rotate under 429: %v", err)
	}
	e.sim.ClearFaults()
	calls := e.sim.Calls(concurtest.EndpointToken)
	_ = e.periodic()
	if e.sim.Calls(concurtest.EndpointToken) != calls {
		t.Errorf("company b called Concur during the app's 429 slow-down")
	}
	if _, err := e.request(logical.ReadOperation, "companies/b/creds", map[string]any{"min_ttl": "15m"}); err != nil {
		t.Errorf("b's still-valid token was not served during the slow-down: %v", err)
	}
	if e.sim.Calls(concurtest.EndpointToken) != calls {
		t.Errorf("a read made company b call Concur during the app's 429 slow-down")
	}
	// Retry-After: 600 s. After it, b is renewed.
	e.clock.Advance(10*time.Minute + time.Second)
	_ = e.periodic()
	if e.sim.Calls(concurtest.EndpointToken) == calls {
		t.Errorf("company b was not renewed after the slow-down ended")
	}
}

// One company's refusal or trouble does not touch another's.
func TestOneCompanysFailureLeavesOthersAlone(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	bad := e.connect("bad", 1, "")
	e.connect("good", 2, "")
	e.sim.RevokeConnection(testClientID, bad)
	e.clock.Advance(59 * time.Minute)
	if _, err := e.request(logical.ReadOperation, "companies/bad/creds", map[string]any{"min_ttl": "5m"}); err == nil {
		t.Fatalf("creds of a revoked company served")
	}
	if st := e.mustOK(logical.ReadOperation, "companies/bad", nil).Data["status"]; st != statusNeedsBootstrap {
		t.Errorf("revoked company status %v", st)
	}
	if d := e.mustOK(logical.ReadOperation, "companies/good/creds", map[string]any{"min_ttl": "5m"}); len(d.Warnings) != 0 {
		t.Errorf("good company warned: %v", d.Warnings)
	}
	if st := e.mustOK(logical.ReadOperation, "companies/good", nil).Data["status"]; st != statusOK {
		t.Errorf("good company status %v", st)
	}
}

// inFlight counts token calls in flight at once through the transport.
type inFlight struct {
	base      http.RoundTripper
	now, peak atomic.Int32
}

func (f *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/oauth2/v0/token" {
		n := f.now.Add(1)
		defer f.now.Add(-1)
		for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
		}
	}
	return f.base.RoundTrip(r)
}

// First reads of many companies at once: one grant each, never more than
// maxConcurrentGrants in flight.
func TestGrantsAreBoundedAcrossCompanies(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Users: -1})
	flight := &inFlight{base: e.sim.Client().Transport}
	e.b.httpClient = &http.Client{Transport: flight}
	data := e.baseConfig()
	delete(data, "company_uuid")
	e.mustOK(logical.CreateOperation, "config", data)
	const n = 24
	for i := range n {
		e.connect(fmt.Sprint("c", i), i+1, "")
	}
	e.clock.Advance(2 * time.Hour) // every access token expired
	e.sim.InjectFault(concurtest.EndpointToken, n, concurtest.Fault{Kind: concurtest.FaultDelay, Delay: 20 * time.Millisecond})
	grants := e.sim.GrantCalls("refresh_token")
	flight.peak.Store(0)
	var wg sync.WaitGroup
	for i := range n {
		for range 3 { // three readers per company
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.request(logical.ReadOperation, fmt.Sprint("companies/c", i, "/creds"), nil); err != nil {
					t.Errorf("creds c%d: %v", i, err)
				}
			}()
		}
	}
	wg.Wait()
	if got := e.sim.GrantCalls("refresh_token") - grants; got != n {
		t.Errorf("%d refresh grants for %d companies' first reads, want one each", got, n)
	}
	if p := flight.peak.Load(); p > maxConcurrentGrants || p < 2 {
		t.Errorf("peak token calls in flight = %d, want between 2 and %d", p, maxConcurrentGrants)
	}
}

// countingStorage counts reads and lists.
type countingStorage struct {
	logical.Storage
	gets, lists atomic.Int64
}

func (s *countingStorage) Get(ctx context.Context, k string) (*logical.StorageEntry, error) {
	s.gets.Add(1)
	return s.Storage.Get(ctx, k)
}

func (s *countingStorage) List(ctx context.Context, p string) ([]string, error) {
	s.lists.Add(1)
	return s.Storage.List(ctx, p)
}

// A periodic pass with nothing due reads no storage, however many
// companies there are; the schedule is loaded once.
func TestPeriodicPassWithNothingDueReadsNothing(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	for i := range 50 {
		e.connect(fmt.Sprint("c", i), i+1, "")
	}
	fresh := newBackend(options{now: e.b.now, httpClient: e.b.httpClient, retry: e.b.retry})
	cs := &countingStorage{Storage: e.storage}
	if err := fresh.Setup(context.Background(), &logical.BackendConfig{Logger: e.b.Logger(), System: e.sys, StorageView: cs}); err != nil {
		t.Fatal(err)
	}
	tick := func() error {
		_, err := fresh.HandleRequest(context.Background(), &logical.Request{Operation: logical.RollbackOperation, Storage: cs})
		return err
	}
	if err := tick(); err != nil {
		t.Fatal(err)
	}
	if cs.gets.Load() < 50 || cs.lists.Load() != 1 {
		t.Fatalf("first pass: %d gets, %d lists; want every company loaded once", cs.gets.Load(), cs.lists.Load())
	}
	cs.gets.Store(0)
	cs.lists.Store(0)
	calls := e.sim.Calls(concurtest.EndpointToken)
	for range 60 {
		e.clock.Advance(time.Minute)
		if err := tick(); err != nil {
			t.Fatal(err)
		}
	}
	if cs.gets.Load() != 0 || cs.lists.Load() != 0 || e.sim.Calls(concurtest.EndpointToken) != calls {
		t.Errorf("an hour of passes with nothing due: %d gets, %d lists, %d token calls", cs.gets.Load(), cs.lists.Load(),
			e.sim.Calls(concurtest.EndpointToken)-calls)
	}
}

// Keep-alive: a company nobody reads gets a grant about monthly, spread
// by name, and its refresh token never comes near Concur's idle limit.
func TestKeepAliveSpreadsAndKeepsRefreshTokensAlive(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	const n = 40
	for i := range n {
		e.connect(fmt.Sprint("c", i), i+1, "")
	}
	start := e.clock.Now()
	grants := e.sim.GrantCalls("refresh_token")
	perDay := map[int]int{}
	for day := range 60 {
		for range 24 {
			e.clock.Advance(time.Hour)
			before := e.sim.GrantCalls("refresh_token")
			if err := e.periodic(); err != nil {
				t.Fatal(err)
			}
			perDay[day] += e.sim.GrantCalls("refresh_token") - before
		}
	}
	if got := e.sim.GrantCalls("refresh_token") - grants; got < n || got > 3*n {
		t.Errorf("%d keep-alive grants for %d companies in 60 days, want one or two each", got, n)
	}
	for day, c := range perDay {
		if c > n/4 {
			t.Errorf("day %d: %d keep-alive grants, not spread", day, c)
		}
	}
	for i := range n {
		tok := e.companyEntry(fmt.Sprint("c", i)).Token
		if tok.RefreshToken != e.sim.CurrentRefreshToken(testClientID, companyUUID(i+1)) {
			t.Errorf("c%d lost its refresh token", i)
		}
		if tok.LastRefreshAt.Sub(start) < 23*24*time.Hour {
			t.Errorf("c%d last renewed %s after start, want a keep-alive within the last month", i, tok.LastRefreshAt.Sub(start))
		}
	}
}

// Invalidate (Enterprise standbys and secondaries): a company another node
// created or deleted shows as such, without the standby reading every
// company again.
func TestInvalidateShowsOtherNodesCompanies(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	e.connect("a", 1, "")
	standby := e.newInstance()
	cs := &countingStorage{Storage: e.storage}
	list := func() string {
		resp, err := requestOn(standby, cs, logical.ListOperation, "companies/", nil)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(resp.Data["keys"])
	}
	if got := list(); got != "[a]" {
		t.Fatalf("standby list = %s", got)
	}
	e.connect("b", 2, "")
	standby.invalidate(context.Background(), companyStorageKey("b"))
	e.mustOK(logical.DeleteOperation, "companies/a", nil)
	standby.invalidate(context.Background(), companyStorageKey("a"))
	cs.lists.Store(0)
	if got := list(); got != "[b]" {
		t.Errorf("standby list after invalidations = %s, want [b]", got)
	}
	if cs.lists.Load() != 0 {
		t.Errorf("the standby listed storage again after an invalidation")
	}
	resp, err := requestOn(standby, cs, logical.ReadOperation, "companies/b/creds", nil)
	if err != nil || resp.Data["access_token"] != e.companyEntry("b").Token.AccessToken {
		t.Errorf("standby creds of b: %v", err)
	}
}

// While the app's token calls are paused (429), tokens Concur issued that
// storage refused are still written by the next pass: that needs storage,
// not Concur.
func TestUnsavedTokensAreWrittenDuringASlowDown(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.connect("a", 1, "")
	e.connect("b", 2, "")
	e.sim.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 429, RetryAfter: "3600"})
	if _, err := e.request(logical.UpdateOperation, "companies/b/rotate", nil); codeOf(err) != http.StatusTooManyRequests {
		t.Fatalf("rotate b under 429: %v", err)
	}
	e.storage.failAfterMarker(1) // a's rotate: the marker is written, the new tokens are not
	if _, err := e.request(logical.UpdateOperation, "companies/a/rotate", nil); err == nil {
		t.Fatal("rotate a with storage refusing the write: no error")
	}
	if !e.b.view("a").unsaved {
		t.Fatal("a's new tokens are not held as unsaved")
	}
	calls := e.sim.Calls(concurtest.EndpointToken)
	e.clock.Advance(time.Minute)
	_ = e.periodic()
	if co, _ := storedCompany(e.storage, "a"); co.Token.RefreshToken != e.sim.CurrentRefreshToken(testClientID, companyUUID(1)) {
		t.Errorf("a's rotated refresh token was not written during the slow-down")
	}
	if e.sim.Calls(concurtest.EndpointToken) != calls {
		t.Errorf("Concur was called during the slow-down")
	}
}
