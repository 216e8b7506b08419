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
	root := n.Client
	s.bootstrap(t, root, mountPath) // the default company: root creds exist and are denied below
	acme, globex, initech := randUUID(), randUUID(), randUUID()
	s.connect(t, root, "acme", acme)
	s.connect(t, root, "globex", globex)
	putPartnerPolicies(t, root)
	rootTok := func(name string) string { return accessToken(readCreds(t, root, mountPath+"/companies/"+name, 0)) }

	allowed := func(c *api.Client, what string, call func(*api.Logical) (*api.Secret, error)) *api.Secret {
		t.Helper()
		sec, err := call(c.Logical())
		if err != nil {
			t.Fatalf("%s: want success, got %v", what, err)
		}
		return sec
	}
	denied := func(c *api.Client, what string, call func(*api.Logical) (*api.Secret, error)) {
		t.Helper()
		_, err := call(c.Logical())
		wantStatus(t, err, 403, what)
	}
	read := func(p string) func(*api.Logical) (*api.Secret, error) {
		return func(l *api.Logical) (*api.Secret, error) { return l.Read(mountPath + "/" + p) }
	}
	write := func(p string, d map[string]any) func(*api.Logical) (*api.Secret, error) {
		return func(l *api.Logical) (*api.Secret, error) { return l.Write(mountPath+"/"+p, d) }
	}
	del := func(p string) func(*api.Logical) (*api.Secret, error) {
		return func(l *api.Logical) (*api.Secret, error) { return l.Delete(mountPath + "/" + p) }
	}
	list := func(l *api.Logical) (*api.Secret, error) { return l.List(mountPath + "/companies") }
	reconnect := func(uuid string) map[string]any {
		return map[string]any{"company_uuid": uuid, "request_token": s.NewRequestToken(s.ClientID, uuid)}
	}
	// Requests nobody but the admin may make (each a valid request, so a 403 is the ACL's).
	adminOnly := func(c *api.Client, who string) {
		t.Helper()
		denied(c, who+": read config", read("config"))
		denied(c, who+": write config", write("config", map[string]any{"allowed_hosts": "http://127.0.0.1:*"}))
		denied(c, who+": delete config", del("config"))
		denied(c, who+": rotate", write("rotate", nil))
		denied(c, who+": rotate companies/acme", write("companies/acme/rotate", nil))
		denied(c, who+": read companies/acme", read("companies/acme"))
		denied(c, who+": delete companies/globex", del("companies/globex"))
		denied(c, who+": list companies", list)
	}

	{ // one-company app
		c := clientWithPolicies(t, root, "concur-app-acme")
		if got := accessToken(allowed(c, "read companies/acme/creds", read("companies/acme/creds"))); got != rootTok("acme") {
			t.Error("companies/acme/creds via the app's token is not acme's token")
		}
		denied(c, "read companies/globex/creds", read("companies/globex/creds"))
		denied(c, "read companies/default/creds", read("companies/default/creds"))
		denied(c, "read creds (the default company's)", read("creds"))
		denied(c, "read companies/acme/profile", read("companies/acme/profile"))
		denied(c, "re-connect companies/acme", write("companies/acme", reconnect(acme)))
		adminOnly(c, "concur-app-acme")
	}
	{ // every-company app
		c := clientWithPolicies(t, root, "concur-app")
		for _, name := range []string{"acme", "globex", "default"} {
			p := "companies/" + name + "/creds"
			if got := accessToken(allowed(c, "read "+p, read(p))); got != rootTok(name) {
				t.Errorf("%s via the app's token is not that company's token", p)
			}
		}
		denied(c, "read creds (the root path)", read("creds"))
		denied(c, "connect companies/initech", write("companies/initech", reconnect(initech)))
		denied(c, "re-connect companies/acme", write("companies/acme", reconnect(acme)))
		adminOnly(c, "concur-app")
	}
	{ // onboarding service
		c := clientWithPolicies(t, root, "concur-onboarding")
		before := rootTok("acme")
		// create (a new company) and update (a re-connect) are both its job.
		if sec := allowed(c, "connect companies/initech", write("companies/initech", reconnect(initech))); sec.Data["status"] != "ok" {
			t.Errorf("connect companies/initech: status %v, want ok", sec.Data["status"])
		}
		allowed(c, "re-connect companies/acme", write("companies/acme", reconnect(acme)))
		if rootTok("acme") == before {
			t.Error("a re-connect of acme did not replace its tokens")
		}
		for _, p := range []string{"companies/initech/creds", "companies/acme/creds", "creds", "companies/acme/profile"} {
			denied(c, "read "+p, read(p))
		}
		denied(c, "read companies/initech", read("companies/initech"))
		adminOnly(c, "concur-onboarding")
	}
	{ // admin
		c := clientWithPolicies(t, root, "concur-admin")
		if cfg := allowed(c, "read config", read("config")); cfg.Data["client_id"] != s.ClientID {
			t.Errorf("config client_id = %v", cfg.Data["client_id"])
		}
		allowed(c, "write config", write("config", map[string]any{"allowed_hosts": "http://127.0.0.1:*"}))
		allowed(c, "rotate", write("rotate", nil))
		rotateCheckedAt(t, s, c, mountPath+"/companies/globex", globex)
		if sec := allowed(c, "read companies/globex", read("companies/globex")); sec.Data["company_uuid"] != globex {
			t.Errorf("companies/globex company_uuid = %v, want %s", sec.Data["company_uuid"], globex)
		}
		allowed(c, "delete companies/initech", del("companies/initech"))
		keys := allowed(c, "list companies", list).Data["keys"]
		if fmt.Sprint(keys) != "[acme default globex]" {
			t.Errorf("list companies = %v, want [acme default globex]", keys)
		}
	}
	// The denied requests changed nothing.
	for _, p := range []string{"companies/acme", "companies/globex", "config"} {
		sec, err := root.Logical().Read(mountPath + "/" + p)
		if err != nil || sec == nil || sec.Data["status"] != "ok" {
			t.Errorf("%s after the policy checks: %v (%v), want status ok", p, sec, err)
		}
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
		fmt.Fprintf(w, "connected: %v\n", sec.Data["status"])
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

// The onboarding recipe of the README: App Center redirects each company's admin to the
// partner's connect page, which connects the company under its UUID; the partner's app
// then reads each company's creds and calls Concur at that company's data centre. A
// re-connect replaces the company's tokens; a failed one keeps them.
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

	type connected struct{ uuid, dc, token string }
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
		creds := readCreds(t, app, mountPath+"/companies/"+co.uuid, 0)
		co.token = accessToken(creds)
		if geo := creds.Data["geolocation"]; geo != s.URLOf(co.dc) {
			t.Errorf("company in %s: creds geolocation %v, want %s", co.dc, geo, s.URLOf(co.dc))
		}
		users := s.Users(co.uuid)
		calls := s.CallsAt(co.dc, concurtest.EndpointUsers)
		if st := identityUser(t, s.URLOf(co.dc), co.token, users[0].ID); st != http.StatusOK {
			t.Errorf("company in %s: Identity with its token answered %d, want 200", co.dc, st)
		}
		if s.CallsAt(co.dc, concurtest.EndpointUsers) != calls+1 {
			t.Errorf("company in %s: the Identity call did not reach its data centre", co.dc)
		}
		// The token is that company's: another company's user is not found with it.
		other := companies[(i+1)%len(companies)]
		if st := identityUser(t, s.URLOf(co.dc), co.token, s.Users(other.uuid)[0].ID); st != http.StatusNotFound {
			t.Errorf("company in %s: another company's user with its token answered %d, want 404", co.dc, st)
		}
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
	if got := s.ErrorCount(108); got != 0 {
		t.Errorf("simulator answered invalid_grant (108) %d times", got)
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

	// Step down while readers go through the standbys (errors are allowed while there is no
	// leader; a served token must be the company's stored one).
	old := active
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
	active = newLeader(t, cl, old)
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
