package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Issue 18 item 7, through real Vault: the README's onboarding policy (companies/+,
// create and update) cannot repoint the root creds at another company or switch the
// default company's prewarm: companies/default is written through config only.
func TestOnboardingPolicyCannotRepointDefaultCompany(t *testing.T) {
	t.Parallel()
	s, n := newMount(t)
	root := n.Client
	s.bootstrap(t, root, mountPath)
	putPartnerPolicies(t, root)
	onboarding := clientWithPolicies(t, root, "concur-onboarding")
	before := accessToken(readCreds(t, root, mountPath, 0))
	other := randUUID()
	s.AddCompany(other, "")

	for _, d := range []map[string]any{
		{"company_uuid": other, "request_token": s.NewRequestToken(s.ClientID, other)},
		{"prewarm": false},
	} {
		_, err := onboarding.Logical().WriteWithContext(ctxT(t, time.Minute), mountPath+"/companies/default", d)
		re := wantStatus(t, err, http.StatusBadRequest, fmt.Sprintf("onboarding: write companies/default %v", keys(d)))
		if re != nil && !strings.Contains(errText(err), "config") {
			t.Errorf("onboarding: write companies/default: %q does not point at config", errText(err))
		}
	}
	// The policy still connects companies.
	s.connect(t, onboarding, "acme", other)

	sec, err := root.Logical().ReadWithContext(ctxT(t, time.Minute), mountPath+"/companies/default")
	if err != nil || sec == nil {
		t.Fatalf("read companies/default: %v (%v)", sec, err)
	}
	if sec.Data["company_uuid"] != s.Company || sec.Data["prewarm"] != true {
		t.Errorf("companies/default after the onboarding writes: company_uuid %v prewarm %v, want %s and true",
			sec.Data["company_uuid"], sec.Data["prewarm"], s.Company)
	}
	if accessToken(readCreds(t, root, mountPath, 0)) != before {
		t.Error("the root creds serve another token after the onboarding service's writes")
	}
}

// Issue 18 item 1, through real Vault: failed onboarding writes (a bad request token
// from a public connect page, each under a fresh name) leave nothing behind: LIST shows
// only the companies that exist and no metric series names a failed one.
func TestFailedOnboardingWritesLeaveNoCompanyOrSeries(t *testing.T) {
	t.Parallel()
	s, n := newMount(t)
	root := n.Client
	s.configureApp(t, root)
	putPartnerPolicies(t, root)
	onboarding := clientWithPolicies(t, root, "concur-onboarding")
	acme := randUUID()
	s.AddCompany(acme, "")
	s.connect(t, onboarding, acme, acme)
	readCreds(t, root, mountPath+"/companies/"+acme, 0)

	const failedWrites = 200
	failed := make(map[string]bool, failedWrites)
	for range failedWrites {
		name := randUUID()
		failed[name] = true
		_, err := onboarding.Logical().WriteWithContext(ctxT(t, time.Minute), mountPath+"/companies/"+name,
			map[string]any{"company_uuid": name, "request_token": "at-" + randHex(16)})
		if err == nil {
			t.Fatalf("a write with a made-up request token succeeded")
		}
	}

	list, err := root.Logical().ListWithContext(ctxT(t, time.Minute), mountPath+"/companies")
	if err != nil || list == nil {
		t.Fatalf("list companies: %v (%v)", list, err)
	}
	if got := fmt.Sprint(list.Data["keys"]); got != fmt.Sprint([]string{acme}) {
		t.Errorf("list companies after %d failed writes = %s, want [%s]", failedWrites, got, acme)
	}
	code, _, body := scrapeMetrics(t, n, n.RootToken, mountPath)
	if code != http.StatusOK {
		t.Fatalf("scrape: HTTP %d: %s", code, body)
	}
	var named []string
	for name, mf := range parseMetrics(t, body) {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if failed[lp.GetValue()] {
					named = append(named, fmt.Sprintf("%s{%s=%q}", name, lp.GetName(), lp.GetValue()))
				}
			}
		}
	}
	if len(named) > 0 {
		slices.Sort(named)
		t.Errorf("%d metric series name a company whose write failed, e.g. %s", len(named), named[0])
	}
}

// Issue 18 item 2, through real Vault: one company entry that cannot be decoded (here
// made so through sys/raw) costs that company only: the others' creds are served, LIST
// and the metrics scrape work, app-only config writes work, that company's read shows
// the error and its delete works.
func TestUndecodableCompanyEntryCostsOnlyThatCompany(t *testing.T) {
	t.Parallel()
	s, n := newMount(t)
	root := n.Client
	s.configureApp(t, root)
	acme, globex := randUUID(), randUUID()
	s.AddCompany(acme, "")
	s.AddCompany(globex, "")
	s.connect(t, root, "acme", acme)
	s.connect(t, root, "globex", globex)
	before := accessToken(readCreds(t, root, mountPath+"/companies/acme", 0))

	corruptStorageEntry(t, root, mountPath, "companies/globex", `{"company_uuid": 42, "token": "not an object"}`)
	if _, err := root.Sys().ReloadPluginWithContext(ctxT(t, time.Minute),
		&api.ReloadPluginInput{Mounts: []string{mountPath + "/"}}); err != nil {
		t.Fatalf("reload the plugin: %v", err)
	}

	if got := accessToken(readCreds(t, root, mountPath+"/companies/acme", 0)); got != before {
		t.Error("companies/acme/creds serves another token after globex's entry broke")
	}
	list, err := root.Logical().ListWithContext(ctxT(t, time.Minute), mountPath+"/companies")
	if err != nil || list == nil {
		t.Errorf("list companies with one undecodable entry: %v (%v)", list, err)
	} else if got := fmt.Sprint(list.Data["keys"]); got != "[acme globex]" {
		t.Errorf("list companies = %s, want [acme globex]", got)
	}
	if code, _, body := scrapeMetrics(t, n, n.RootToken, mountPath); code != http.StatusOK {
		t.Errorf("scrape with one undecodable entry: HTTP %d: %s", code, body)
	}
	if _, err := root.Logical().WriteWithContext(ctxT(t, time.Minute), mountPath+"/config",
		map[string]any{"allowed_hosts": "http://127.0.0.1:*"}); err != nil {
		t.Errorf("app-only config write with one undecodable entry: %v", err)
	}
	sec, err := root.Logical().ReadWithContext(ctxT(t, time.Minute), mountPath+"/companies/globex")
	shown := errText(err)
	if sec != nil {
		shown += fmt.Sprint(sec.Data)
	}
	if !strings.Contains(strings.ToLower(shown), "decod") {
		t.Errorf("read companies/globex does not show that its entry cannot be decoded: %v (%v)", sec, err)
	}
	if _, err := root.Logical().DeleteWithContext(ctxT(t, time.Minute), mountPath+"/companies/globex"); err != nil {
		t.Errorf("delete the undecodable companies/globex: %v", err)
	}
	if st, body := rawGet(t, root, "sys/raw/logical/"+mountUUID(t, root, mountPath)+"/companies/globex"); st != http.StatusNotFound {
		t.Errorf("companies/globex still stored after its delete: %d %s", st, body)
	}
}

// mountUUID is the UUID under which Vault stores the mount's entries (sys/raw/logical/<uuid>/).
func mountUUID(t testing.TB, c *api.Client, mount string) string {
	t.Helper()
	m, err := c.Sys().GetMountWithContext(ctxT(t, time.Minute), mount)
	if err != nil || m == nil || m.UUID == "" {
		t.Fatalf("mount %s: %v (%v)", mount, m, err)
	}
	return m.UUID
}

// corruptStorageEntry writes value over the mount's storage entry key through sys/raw, as
// an operator's edit or a damaged disk would leave it.
func corruptStorageEntry(t testing.TB, c *api.Client, mount, key, value string) {
	t.Helper()
	path := "sys/raw/logical/" + mountUUID(t, c, mount) + "/" + key
	if _, err := c.Logical().WriteWithContext(ctxT(t, time.Minute), path, map[string]any{"value": value}); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// newMount is a simulator and a fresh Vault server with the plugin enabled at mountPath.
func newMount(t testing.TB) (*sim, *Node) {
	t.Helper()
	s := newSim(t, concurtest.Options{})
	n := StartInitUnseal(t, storageInmem)
	SetupPlugin(t, mountPath, n)
	return s, n
}
