package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// partnerPolicies are the README's policy set for many companies on one mount ("Many
// companies (partners)"); TestPartnerPoliciesInREADME keeps the two in sync.
var partnerPolicies = []struct{ name, hcl string }{
	{"concur-app-acme", `path "concur/companies/acme/creds" { capabilities = ["read"] }`},
	{"concur-app", `path "concur/companies/+/creds" { capabilities = ["read"] }`},
	{"concur-onboarding", `path "concur/companies/+" { capabilities = ["create", "update"] }`},
	{"concur-admin", `path "concur/config"      { capabilities = ["create", "update", "read", "delete"] }
path "concur/rotate"      { capabilities = ["update"] }
path "concur/companies/*" { capabilities = ["create", "update", "read", "delete", "list"] }`},
}

func TestPartnerPoliciesInREADME(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range partnerPolicies {
		if !strings.Contains(string(readme), p.hcl) {
			t.Errorf("README.md does not show policy %s as tested:\n%s", p.name, p.hcl)
		}
	}
}

// putPartnerPolicies writes partnerPolicies through root.
func putPartnerPolicies(t testing.TB, root *api.Client) {
	t.Helper()
	for _, p := range partnerPolicies {
		if err := root.Sys().PutPolicy(p.name, p.hcl); err != nil {
			t.Fatalf("put policy %s: %v", p.name, err)
		}
	}
}

// clientWithPolicies is a client of root's server with a new token holding policies.
func clientWithPolicies(t testing.TB, root *api.Client, policies ...string) *api.Client {
	t.Helper()
	sec, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: policies, TTL: "1h"})
	if err != nil {
		t.Fatalf("create token with %v: %v", policies, err)
	}
	c, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(sec.Auth.ClientToken)
	return c
}

// configureApp writes the app alone to <mount>/config (no company), with base_url at
// the simulator's first data centre (the landing zone when it has one).
func (s *sim) configureApp(t testing.TB, c *api.Client) {
	t.Helper()
	d := s.configData(nil)
	delete(d, "company_uuid")
	if _, err := c.Logical().WriteWithContext(ctxT(t, time.Minute), mountPath+"/config", d); err != nil {
		t.Fatalf("write %s/config (the app alone): %v", mountPath, err)
	}
}

// connect writes companies/<name> for a company of the simulator with a fresh request
// token and returns the company's path prefix.
func (s *sim) connect(t testing.TB, c *api.Client, name, companyUUID string) string {
	t.Helper()
	prefix := mountPath + "/companies/" + name
	data := map[string]any{"company_uuid": companyUUID, "request_token": s.NewRequestToken(s.ClientID, companyUUID)}
	sec, err := c.Logical().WriteWithContext(ctxT(t, 2*time.Minute), prefix, data)
	if err != nil {
		t.Fatalf("write %s: %v", prefix, err)
	}
	if sec == nil || sec.Data["status"] != "ok" {
		t.Fatalf("write %s: want status ok, got %v", prefix, sec)
	}
	return prefix
}

// Partner policies: an app allowed one company's creds reads those and nothing else; an
// app allowed every company's creds cannot change anything; the onboarding service
// connects and re-connects companies and never reads a token; the admin does the rest.
func TestCompanyPolicies(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{})
	n := StartInitUnseal(t, storageInmem)
	SetupPlugin(t, mountPath, n)
	e := &policyEnv{t: t, s: s, root: n.Client, acme: randUUID(), globex: randUUID(), initech: randUUID()}
	s.bootstrap(t, e.root, mountPath) // the default company: root creds exist and are denied below
	s.connect(t, e.root, "acme", e.acme)
	s.connect(t, e.root, "globex", e.globex)
	putPartnerPolicies(t, e.root)

	e.oneCompanyApp(e.as("concur-app-acme"))
	e.everyCompanyApp(e.as("concur-app"))
	e.onboardingService(e.as("concur-onboarding"))
	e.admin(e.as("concur-admin"))
	// The denied requests changed nothing.
	for _, p := range []string{"companies/acme", "companies/globex", "config"} {
		sec, err := e.root.Logical().Read(mountPath + "/" + p)
		if err != nil || sec == nil || sec.Data["status"] != "ok" {
			t.Errorf("%s after the policy checks: %v (%v), want status ok", p, sec, err)
		}
	}
}

// policyEnv is TestCompanyPolicies' mount: the default company, acme and globex
// connected; initech is a company of the simulator that is not connected yet.
type policyEnv struct {
	t                     testing.TB
	s                     *sim
	root                  *api.Client
	acme, globex, initech string // company UUIDs
}

// probe sends requests with one policy's token.
type probe struct {
	e   *policyEnv
	c   *api.Client
	who string
}

// request is one Vault request relative to the mount.
type request struct {
	what string
	do   func(*api.Logical) (*api.Secret, error)
}

func readReq(p string) request {
	return request{"read " + p, func(l *api.Logical) (*api.Secret, error) { return l.Read(mountPath + "/" + p) }}
}

func writeReq(p string, d map[string]any) request {
	return request{"write " + p, func(l *api.Logical) (*api.Secret, error) { return l.Write(mountPath+"/"+p, d) }}
}

func deleteReq(p string) request {
	return request{"delete " + p, func(l *api.Logical) (*api.Secret, error) { return l.Delete(mountPath + "/" + p) }}
}

var listCompanies = request{"list companies", func(l *api.Logical) (*api.Secret, error) { return l.List(mountPath + "/companies") }}

func (e *policyEnv) as(policy string) probe {
	return probe{e: e, c: clientWithPolicies(e.t, e.root, policy), who: policy}
}

func (p probe) allowed(r request) *api.Secret {
	p.e.t.Helper()
	sec, err := r.do(p.c.Logical())
	if err != nil {
		p.e.t.Fatalf("%s: %s: want success, got %v", p.who, r.what, err)
	}
	return sec
}

func (p probe) denied(rs ...request) {
	p.e.t.Helper()
	for _, r := range rs {
		_, err := r.do(p.c.Logical())
		wantStatus(p.e.t, err, 403, p.who+": "+r.what)
	}
}

// token is the company's access token as root reads it.
func (e *policyEnv) token(name string) string {
	return accessToken(readCreds(e.t, e.root, mountPath+"/companies/"+name, 0))
}

// connectReq connects (or re-connects) a company with a fresh request token.
func (e *policyEnv) connectReq(name, companyUUID string) request {
	return writeReq("companies/"+name, map[string]any{
		"company_uuid": companyUUID, "request_token": e.s.NewRequestToken(e.s.ClientID, companyUUID)})
}

// adminOnly are requests nobody but the admin may make (each one valid, so a 403 is the ACL's).
func (p probe) adminOnly() {
	p.e.t.Helper()
	p.denied(readReq("config"), writeReq("config", map[string]any{"allowed_hosts": "http://127.0.0.1:*"}), deleteReq("config"),
		writeReq("rotate", nil), writeReq("companies/acme/rotate", nil), readReq("companies/acme"),
		deleteReq("companies/globex"), listCompanies)
}

func (e *policyEnv) oneCompanyApp(p probe) {
	if got := accessToken(p.allowed(readReq("companies/acme/creds"))); got != e.token("acme") {
		e.t.Error("companies/acme/creds via the app's token is not acme's token")
	}
	p.denied(readReq("companies/globex/creds"), readReq("companies/default/creds"), readReq("creds"),
		readReq("companies/acme/profile"), e.connectReq("acme", e.acme))
	p.adminOnly()
}

func (e *policyEnv) everyCompanyApp(p probe) {
	for _, name := range []string{"acme", "globex", "default"} {
		if got := accessToken(p.allowed(readReq("companies/" + name + "/creds"))); got != e.token(name) {
			e.t.Errorf("companies/%s/creds via the app's token is not that company's token", name)
		}
	}
	p.denied(readReq("creds"), e.connectReq("initech", e.initech), e.connectReq("acme", e.acme))
	p.adminOnly()
}

func (e *policyEnv) onboardingService(p probe) {
	before := e.token("acme")
	// create (a new company) and update (a re-connect) are both its job.
	if sec := p.allowed(e.connectReq("initech", e.initech)); sec.Data["status"] != "ok" {
		e.t.Errorf("connect companies/initech: status %v, want ok", sec.Data["status"])
	}
	p.allowed(e.connectReq("acme", e.acme))
	if e.token("acme") == before {
		e.t.Error("a re-connect of acme did not replace its tokens")
	}
	p.denied(readReq("companies/initech/creds"), readReq("companies/acme/creds"), readReq("creds"),
		readReq("companies/acme/profile"), readReq("companies/initech"))
	p.adminOnly()
}

func (e *policyEnv) admin(p probe) {
	if cfg := p.allowed(readReq("config")); cfg.Data["client_id"] != e.s.ClientID {
		e.t.Errorf("config client_id = %v", cfg.Data["client_id"])
	}
	p.allowed(writeReq("config", map[string]any{"allowed_hosts": "http://127.0.0.1:*"}))
	p.allowed(writeReq("rotate", nil))
	rotateCheckedAt(e.t, e.s, p.c, mountPath+"/companies/globex", e.globex)
	if sec := p.allowed(readReq("companies/globex")); sec.Data["company_uuid"] != e.globex {
		e.t.Errorf("companies/globex company_uuid = %v, want %s", sec.Data["company_uuid"], e.globex)
	}
	p.allowed(deleteReq("companies/initech"))
	if keys := p.allowed(listCompanies).Data["keys"]; fmt.Sprint(keys) != "[acme default globex]" {
		e.t.Errorf("list companies = %v, want [acme default globex]", keys)
	}
}

// connectPage is the partner's page App Center sends a company's admin to, with the
// company's UUID (id) and a company request token (requestToken). It connects the company
// under its UUID with the onboarding service's token, and tells the admin how it went.
func connectPage(t testing.TB, onboarding *api.Client) *httptest.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, rt := r.URL.Query().Get("id"), r.URL.Query().Get("requestToken")
		if id == "" || rt == "" {
			http.Error(w, "id and requestToken are required", http.StatusBadRequest)
			return
		}
		sec, err := onboarding.Logical().WriteWithContext(r.Context(), mountPath+"/companies/"+id,
			map[string]any{"company_uuid": id, "request_token": rt})
		if err != nil {
			http.Error(w, "could not connect: "+errText(err), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "connected: %v\n", sec.Data["status"]) //nolint:gosec // G705: a status word from Vault, to a test client
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// appCenterRedirect is the company admin's browser following App Center's redirect to the
// connect page; it returns the page's status and text.
func appCenterRedirect(t testing.TB, page *httptest.Server, companyUUID, requestToken string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t, 2*time.Minute), http.MethodGet, page.URL+"/connect?id="+companyUUID+
		"&requestToken="+requestToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := page.Client().Do(req)
	if err != nil {
		t.Fatalf("connect page: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// identityUser calls the simulator's Identity v4 for one user with a bearer token, as the
// partner's app does with what it read from Vault, and returns the HTTP status.
func identityUser(t testing.TB, geolocation, bearer, userID string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t, time.Minute), http.MethodGet, geolocation+"/profile/identity/v4/Users/"+userID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("Identity at %s: %v", geolocation, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// connected is a company the partner connected: its UUID, data centre, and the access
// token last served for it.
type connected struct{ uuid, dc, token string }

// checkCompanyCreds reads a company's creds as the partner's app and calls Identity with
// them, as the app would: at the company's data centre, for one of its users (another
// company's user is not found with its token). It returns the access token.
func checkCompanyCreds(t testing.TB, s *sim, app *api.Client, companyUUID, dc, otherUUID string) string {
	t.Helper()
	creds := readCreds(t, app, mountPath+"/companies/"+companyUUID, 0)
	tok := accessToken(creds)
	if geo := creds.Data["geolocation"]; geo != s.URLOf(dc) {
		t.Errorf("company in %s: creds geolocation %v, want %s", dc, geo, s.URLOf(dc))
	}
	calls := s.CallsAt(dc, concurtest.EndpointUsers)
	if st := identityUser(t, s.URLOf(dc), tok, s.Users(companyUUID)[0].ID); st != http.StatusOK {
		t.Errorf("company in %s: Identity with its token answered %d, want 200", dc, st)
	}
	if s.CallsAt(dc, concurtest.EndpointUsers) != calls+1 {
		t.Errorf("company in %s: the Identity call did not reach its data centre", dc)
	}
	if st := identityUser(t, s.URLOf(dc), tok, s.Users(otherUUID)[0].ID); st != http.StatusNotFound {
		t.Errorf("company in %s: another company's user with its token answered %d, want 404", dc, st)
	}
	return tok
}

// The onboarding recipe of the README: App Center redirects each company's admin to the
// partner's connect page, which connects the company under its UUID; the partner's app
// then reads each company's creds and calls Concur at that company's data centre. A
// re-connect replaces the company's tokens; a failed one keeps them. A new client secret
// on config applies to every company.
func TestOnboardingFlow(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{DataCenters: []string{concurtest.LandingZone, "us2", "eu2", "apj1"}, Users: 3})
	n := StartInitUnseal(t, storageInmem)
	SetupPlugin(t, mountPath, n)
	root := n.Client
	s.configureApp(t, root) // base_url is the landing zone: it answers for companies of every data centre
	putPartnerPolicies(t, root)
	page := connectPage(t, clientWithPolicies(t, root, "concur-onboarding"))
	app := clientWithPolicies(t, root, "concur-app")

	var companies []*connected
	for _, dc := range []string{"us2", "eu2", "apj1"} {
		co := &connected{uuid: randUUID(), dc: dc}
		s.AddCompany(co.uuid, dc)
		if status, body := appCenterRedirect(t, page, co.uuid, s.NewRequestToken(s.ClientID, co.uuid)); status != http.StatusOK {
			t.Fatalf("connect page for a company in %s: %d %s", dc, status, body)
		}
		companies = append(companies, co)
	}
	for i, co := range companies {
		co.token = checkCompanyCreds(t, s, app, co.uuid, co.dc, companies[(i+1)%len(companies)].uuid)
	}
	if got := s.GrantCalls("password"); got != len(companies) {
		t.Errorf("%d password grants for %d connected companies", got, len(companies))
	}
	list, err := root.Logical().List(mountPath + "/companies")
	if err != nil || list == nil {
		t.Fatalf("list companies: %v (%v)", list, err)
	}
	if keys, _ := list.Data["keys"].([]any); len(keys) != len(companies) {
		t.Errorf("list companies = %v, want the %d connected", list.Data["keys"], len(companies))
	}

	// The admin connects the first company again (App Center hands out a new request
	// token): its tokens are replaced, the others' are not.
	co := companies[0]
	oldRefresh := s.CurrentRefreshToken(s.ClientID, co.uuid)
	if status, body := appCenterRedirect(t, page, co.uuid, s.NewRequestToken(s.ClientID, co.uuid)); status != http.StatusOK {
		t.Fatalf("re-connect: %d %s", status, body)
	}
	if got := accessToken(readCreds(t, app, mountPath+"/companies/"+co.uuid, 0)); got == co.token {
		t.Error("after a re-connect creds still serve the old access token")
	} else {
		co.token = got
	}
	if s.CurrentRefreshToken(s.ClientID, co.uuid) == oldRefresh {
		t.Fatal("the simulator did not issue a new refresh token on the re-connect")
	}
	// The engine holds the re-connect's refresh token: the next refresh uses it.
	rotateCheckedAt(t, s, root, mountPath+"/companies/"+co.uuid, co.uuid)
	co.token = accessToken(readCreds(t, app, mountPath+"/companies/"+co.uuid, 0))
	for _, other := range companies[1:] {
		if got := accessToken(readCreds(t, app, mountPath+"/companies/"+other.uuid, 0)); got != other.token {
			t.Errorf("company in %s: its token changed with another company's re-connect", other.dc)
		}
	}

	// A re-connect with a request token Concur refuses changes nothing.
	status, body := appCenterRedirect(t, page, co.uuid, "at-"+randHex(16))
	if status != http.StatusBadGateway || !strings.Contains(body, "request_token") {
		t.Errorf("re-connect with a bad request token: %d %q, want 502 naming request_token", status, body)
	}
	if got := accessToken(readCreds(t, app, mountPath+"/companies/"+co.uuid, 0)); got != co.token {
		t.Error("a refused re-connect changed the company's token")
	}
	rotateCheckedAt(t, s, root, mountPath+"/companies/"+co.uuid, co.uuid)
	rotateAppSecret(t, s, root, companies)
	if got := s.ErrorCount(108); got != 0 {
		t.Errorf("simulator answered invalid_grant (108) %d times", got)
	}
}

// rotateAppSecret: the partner gets a new client secret at Concur. Until config has it,
// grants are refused, and no company is marked needs_bootstrap for that; once written,
// every company refreshes with its then-current refresh token.
func rotateAppSecret(t testing.TB, s *sim, root *api.Client, companies []*connected) {
	t.Helper()
	s.ClientSecret = "cs-" + randHex(20)
	s.AddClient(s.ClientID, s.ClientSecret)
	if _, err := rotate(root, mountPath+"/companies/"+companies[1].uuid); err == nil {
		t.Error("rotate with the old client secret succeeded")
	}
	for _, co := range companies {
		sec, err := root.Logical().Read(mountPath + "/companies/" + co.uuid)
		if err != nil || sec == nil || sec.Data["status"] == "needs_bootstrap" {
			t.Errorf("company in %s after Concur refused the old client secret: %v (%v), want no needs_bootstrap", co.dc, sec, err)
		}
	}
	if _, err := root.Logical().Write(mountPath+"/config", map[string]any{"client_secret": s.ClientSecret}); err != nil {
		t.Fatalf("write config client_secret: %v", err)
	}
	for _, co := range companies {
		rotateCheckedAt(t, s, root, mountPath+"/companies/"+co.uuid, co.uuid)
		sec, err := root.Logical().Read(mountPath + "/companies/" + co.uuid)
		if err != nil || sec == nil || sec.Data["status"] != "ok" {
			t.Errorf("company in %s after the new client secret: %v (%v), want status ok", co.dc, sec, err)
		}
	}
}

// HA with several companies: three companies of two data centres on a three-node raft
// cluster; the leader steps down while apps read every company's creds through the
// standbys; the new leader serves each company's stored token without a new bootstrap and
// refreshes each with its then-current refresh token (strict rotation), concurrently too.
func TestHACompanies(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{Rotation: concurtest.RotationRotate, DataCenters: []string{concurtest.LandingZone, "us2", "eu2"}})
	cl := StartRaftCluster(t, 3)
	active := cl.Active()
	SetupPlugin(t, mountPath, append([]*Node{active}, cl.Standbys(active)...)...)
	s.configureApp(t, active.Client)

	names := []string{"alpha", "bravo", "charlie"}
	uuids := map[string]string{}
	for i, name := range names {
		uuids[name] = randUUID()
		s.AddCompany(uuids[name], []string{"us2", "eu2"}[i%2])
		s.connect(t, active.Client, name, uuids[name])
		// A refresh through a standby is forwarded and served once, with the current token.
		rotateCheckedAt(t, s, cl.Standbys(active)[0].Client, mountPath+"/companies/"+name, uuids[name])
	}
	tokens := map[string]string{}
	for _, name := range names {
		tokens[name] = accessToken(readCreds(t, active.Client, mountPath+"/companies/"+name, 0))
		for _, nd := range cl.Standbys(active) {
			if got := accessToken(readCreds(t, nd.Client, mountPath+"/companies/"+name, 0)); got != tokens[name] {
				t.Errorf("%s: creds via standby %s differ from the active node's", name, nd.cfg.Name)
			}
		}
	}
	refreshes := s.GrantCalls("refresh_token")

	active = stepDownWhileReading(t, cl, active, names, tokens)
	for _, name := range names {
		if got := accessToken(readCreds(t, active.Client, mountPath+"/companies/"+name, 0)); got != tokens[name] {
			t.Errorf("%s: the new leader does not serve the stored access token", name)
		}
	}
	if got := s.GrantCalls("refresh_token"); got != refreshes {
		t.Errorf("the fail-over made %d refresh grants; the stored tokens were valid", got-refreshes)
	}
	for _, name := range names {
		for _, via := range cl.Nodes { // the new leader, the old one (now a standby), the other
			rotateCheckedAt(t, s, via.Client, mountPath+"/companies/"+name, uuids[name])
		}
	}
	concurrentCompanyRotates(t, s, cl.Nodes, names)
	for _, name := range names {
		sec, err := active.Client.Logical().Read(mountPath + "/companies/" + name)
		if err != nil || sec == nil || sec.Data["status"] != "ok" {
			t.Errorf("companies/%s after the fail-over: %v (%v), want status ok", name, sec, err)
		}
		rotateCheckedAt(t, s, active.Client, mountPath+"/companies/"+name, uuids[name])
	}
	if got := s.ErrorCount(108); got != 0 {
		t.Errorf("simulator answered invalid_grant (108) %d times (a refresh token was lost)", got)
	}
	if got := s.GrantCalls("password"); got != len(names) {
		t.Errorf("password grants = %d, want %d (no re-bootstrap)", got, len(names))
	}
}

// stepDownWhileReading makes the leader step down while readers go through the standbys
// (errors are allowed while there is no leader; a served token must be the company's
// stored one) and returns the new leader once reads through the standbys work again.
func stepDownWhileReading(t testing.TB, cl *Cluster, old *Node, names []string, tokens map[string]string) *Node {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served, failed, wrong atomic.Int64
	for _, nd := range cl.Standbys(old) {
		wg.Add(1)
		go func(nd *Node) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := names[i%len(names)]
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				sec, err := nd.Client.Logical().ReadWithContext(ctx, mountPath+"/companies/"+name+"/creds")
				cancel()
				switch {
				case err != nil || sec == nil:
					failed.Add(1)
					time.Sleep(50 * time.Millisecond)
				case accessToken(sec) != tokens[name]:
					wrong.Add(1)
				default:
					served.Add(1)
				}
			}
		}(nd)
	}
	t.Logf("leader %s steps down", old.cfg.Name)
	if err := old.Client.Sys().StepDownWithContext(ctxT(t, time.Minute)); err != nil {
		t.Fatalf("step-down: %v", err)
	}
	active := newLeader(t, cl, old)
	t.Logf("new leader %s", active.cfg.Name)
	after := served.Load()
	for deadline := time.Now().Add(30 * time.Second); served.Load() < after+5; {
		if time.Now().After(deadline) {
			t.Error("creds through the standbys did not recover within 30s of the step-down")
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("creds through standbys during the step-down: %d served, %d failed, %d another token", served.Load(), failed.Load(), wrong.Load())
	if wrong.Load() != 0 {
		t.Errorf("%d reads during the step-down served a token other than the company's stored one", wrong.Load())
	}
	return active
}

// newLeader waits until a node other than old is active.
func newLeader(t testing.TB, cl *Cluster, old *Node) *Node {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, nd := range cl.Nodes {
			if ok, _ := nd.IsActive(); ok && nd != old {
				return nd
			}
		}
	}
	t.Fatalf("no node other than %s became active within 60s", old.cfg.Name)
	return nil
}

// concurrentCompanyRotates rotates every company through every node at once: each rotate
// succeeds with exactly one refresh grant and none presents a spent refresh token.
func concurrentCompanyRotates(t *testing.T, s *sim, nodes []*Node, names []string) {
	t.Helper()
	grants, errs108 := s.GrantCalls("refresh_token"), s.ErrorCount(108)
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes)*len(names))
	for _, nd := range nodes {
		for _, name := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := rotate(nd.Client, mountPath+"/companies/"+name); err != nil {
					errs <- fmt.Errorf("rotate %s via %s: %s", name, nd.cfg.Name, errText(err))
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.ErrorCount(108) - errs108; got != 0 {
		t.Errorf("concurrent rotates: %d invalid_grant answers (a spent refresh token was used)", got)
	}
	if got, want := s.GrantCalls("refresh_token")-grants, len(nodes)*len(names); got != want {
		t.Errorf("concurrent rotates: %d refresh grants for %d rotate requests", got, want)
	}
}
