package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Kill ends the server's process group (Vault and its plugin processes) with SIGKILL, as a
// crashed or powered-off node would end: no step-down, no Clean.
func (n *Node) Kill() {
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	n.Stop() // reaps the process and closes the log
}

// pid is the Vault server's process id (0 when not running).
func (n *Node) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// pluginRSSKiB is the resident memory of this node's plugin process (a child of Vault
// running the plugin binary), 0 when there is none.
func (n *Node) pluginRSSKiB() int {
	parent := strconv.Itoa(n.pid())
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) < 2 || fields[1] != parent || !strings.HasPrefix(string(stat), filepath.Base(d)+" (vault-plugin-") {
			continue
		}
		status, err := os.ReadFile(filepath.Join(d, "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kib, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				return kib
			}
		}
	}
	return 0
}

// company is one connected company of a scale test: its name on the mount and UUID.
type company struct{ name, uuid string }

// connectMany adds n companies to the simulator and connects each through c (workers at a
// time), named <prefix><i> in zero-padded order.
func (s *sim) connectMany(t testing.TB, c *api.Client, prefix string, n, workers int) []company {
	t.Helper()
	cos := make([]company, n)
	for i := range cos {
		cos[i] = company{name: fmt.Sprintf("%s%05d", prefix, i), uuid: randUUID()}
		s.AddCompany(cos[i].uuid, "")
	}
	eachParallel(t, cos, workers, func(co company) error {
		data := map[string]any{"company_uuid": co.uuid, "request_token": s.NewRequestToken(s.ClientID, co.uuid)}
		_, err := c.Logical().WriteWithContext(context.Background(), mountPath+"/companies/"+co.name, data)
		return err
	})
	return cos
}

// eachParallel runs fn for every company, workers at a time, and fails the test with the
// first error.
func eachParallel(t testing.TB, cos []company, workers int, fn func(company) error) {
	t.Helper()
	jobs := make(chan company)
	errs := make(chan error, len(cos))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for co := range jobs {
				if err := fn(co); err != nil {
					errs <- fmt.Errorf("%s: %s", co.name, errText(err))
				}
			}
		}()
	}
	for _, co := range cos {
		jobs <- co
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// companyCreds reads every company's creds through c (workers at a time) and returns the
// access token and expires_at of each, by name.
func companyCreds(t testing.TB, c *api.Client, cos []company, workers int) map[string][2]string {
	t.Helper()
	var mu sync.Mutex
	out := map[string][2]string{}
	eachParallel(t, cos, workers, func(co company) error {
		sec, err := c.Logical().ReadWithContext(context.Background(), mountPath+"/companies/"+co.name+"/creds")
		if err != nil {
			return err
		}
		if sec == nil || accessToken(sec) == "" {
			return fmt.Errorf("no access token in %v", sec)
		}
		exp, _ := sec.Data["expires_at"].(string)
		mu.Lock()
		out[co.name] = [2]string{accessToken(sec), exp}
		mu.Unlock()
		return nil
	})
	return out
}

// listDetailed LISTs <mount>/companies through Vault's HTTP API with the query given
// (?list=true&..., as `vault list` sends it) and returns keys and key_info.
func listDetailed(t testing.TB, n *Node, token, query string) ([]string, map[string]map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t, time.Minute), http.MethodGet,
		n.Addr+"/v1/"+mountPath+"/companies?list=true"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", token)
	resp, err := probeClientLong.Do(req)
	if err != nil {
		t.Fatalf("LIST ?%s: %v", query, err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Keys    []string                  `json:"keys"`
			KeyInfo map[string]map[string]any `json:"key_info"`
		} `json:"data"`
		Errors []string `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("LIST ?%s: HTTP %d, %v", query, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("LIST ?%s: HTTP %d %v", query, resp.StatusCode, body.Errors)
	}
	return body.Data.Keys, body.Data.KeyInfo
}

var probeClientLong = &http.Client{Timeout: 5 * time.Minute}

// vaultCLI runs the real `vault` binary against n with the root token and returns stdout.
func vaultCLI(t testing.TB, n *Node, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctxT(t, time.Minute), vaultBin(t), args...)
	cmd.Env = append(cleanEnv(), "VAULT_ADDR="+n.Addr, "VAULT_TOKEN="+n.RootToken)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vault %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// `vault list -detailed concur/companies` shows each company's status and expiries as a
// table; status= filters and after=/limit= page through real Vault, by LIST with a query
// string and by `vault read ... list=true` (the CLI's one way to send parameters).
func TestCompaniesListDetailed(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	n := StartInitUnseal(t, storageInmem)
	SetupPlugin(t, mountPath, n)
	s.configureApp(t, n.Client)
	cos := s.connectMany(t, n.Client, "co", 6, 3)
	for _, co := range []company{cos[1], cos[4]} {
		s.RevokeConnection(s.ClientID, co.uuid)
		if _, err := rotate(n.Client, mountPath+"/companies/"+co.name); err == nil {
			t.Fatalf("rotate of revoked %s succeeded", co.name)
		}
	}
	creds := companyCreds(t, n.Client, []company{cos[0], cos[2], cos[3], cos[5]}, 2)

	table := vaultCLI(t, n, "list", "-detailed", mountPath+"/companies")
	t.Logf("vault list -detailed %s/companies:\n%s", mountPath, table)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 2+len(cos) || !strings.HasPrefix(lines[0], "Keys") {
		t.Fatalf("vault list -detailed: want a header, a rule and %d rows:\n%s", len(cos), table)
	}
	for _, col := range []string{"status", "geolocation", "access_token_expires_at", "refresh_token_expires_at",
		"last_error_code", "last_error_at", "prewarm"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("vault list -detailed: no %s column in %q", col, lines[0])
		}
	}
	for i, co := range cos {
		row := lines[2+i]
		want := []string{co.name, "ok", creds[co.name][1]}
		if i == 1 || i == 4 {
			want = []string{co.name, "needs_bootstrap", "108"}
		}
		for _, w := range want {
			if !strings.Contains(row, w) {
				t.Errorf("vault list -detailed: row %q lacks %q", row, w)
			}
		}
	}
	checkListQueries(t, n, cos)
}

// checkListQueries: the status filter and paging through Vault's HTTP API and the CLI.
func checkListQueries(t *testing.T, n *Node, cos []company) {
	t.Helper()
	names := func(cs ...company) string {
		var out []string
		for _, c := range cs {
			out = append(out, c.name)
		}
		return fmt.Sprint(out)
	}
	for _, c := range []struct{ query, want string }{
		{"&status=needs_bootstrap", names(cos[1], cos[4])},
		{"&status=ok&limit=2", names(cos[0], cos[2])},
		{"&status=ok&after=" + cos[2].name, names(cos[3], cos[5])},
		{"&limit=4&after=" + cos[1].name, names(cos[2], cos[3], cos[4], cos[5])},
	} {
		keys, info := listDetailed(t, n, n.RootToken, c.query)
		if fmt.Sprint(keys) != c.want || len(info) != len(keys) {
			t.Errorf("LIST ?list=true%s = %v (key_info for %d), want %s", c.query, keys, len(info), c.want)
		}
	}
	out := vaultCLI(t, n, "read", "-format=json", mountPath+"/companies", "list=true", "status=needs_bootstrap")
	var sec api.Secret
	if err := json.Unmarshal([]byte(out), &sec); err != nil {
		t.Fatalf("vault read ... list=true: %v\n%s", err, out)
	}
	if got := fmt.Sprint(sec.Data["keys"]); got != names(cos[1], cos[4]) {
		t.Errorf("vault read concur/companies list=true status=needs_bootstrap: keys %s", got)
	}
	req := n.Client.NewRequest("LIST", "/v1/"+mountPath+"/companies")
	req.Params.Set("status", "bogus")
	resp, err := n.Client.RawRequestWithContext(ctxT(t, time.Minute), req) //nolint:staticcheck // the LIST verb as curl -X LIST sends it
	if resp != nil {
		resp.Body.Close()
	}
	if re := wantStatus(t, err, http.StatusBadRequest, "LIST with status=bogus"); !strings.Contains(fmt.Sprint(re.Errors), "status") {
		t.Errorf("LIST with status=bogus: %v, want the field named", re.Errors)
	}
}

// failover is a fail-over of a three-node raft cluster serving many companies: what the
// new active node did and how long it took.
type failover struct {
	companies       int
	killedAt        time.Time
	activeAfter     time.Duration // until a remaining node reports itself active
	firstServedAt   time.Duration // until the first company's creds were served
	allServedAt     time.Duration // until every company's creds were served
	tokenCalls      int           // Concur token calls during the pass
	pluginRSSKiB    int           // the new active node's plugin after the pass
	sameTokens      int           // companies served the token they had before the kill
	newActive       *Node
	creds           map[string][2]string
	populate, setup time.Duration
}

// runFailover starts a three-node raft cluster, connects n companies through the active
// node, reads each one's creds, kills the active node (SIGKILL) and measures how the new
// active node serves every company again.
func runFailover(t testing.TB, n int) failover {
	t.Helper()
	s := newSim(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	start := time.Now()
	cl := StartRaftCluster(t, 3)
	old := cl.Active()
	SetupPlugin(t, mountPath, append([]*Node{old}, cl.Standbys(old)...)...)
	s.configureApp(t, old.Client)
	f := failover{companies: n, setup: time.Since(start)}
	start = time.Now()
	cos := s.connectMany(t, old.Client, "co", n, 8)
	f.populate = time.Since(start)
	before := companyCreds(t, old.Client, cos, 8)
	calls := s.Calls(concurtest.EndpointToken)

	f.killedAt = time.Now()
	old.Kill()
	first := cl.Standbys(old)
	f.newActive = waitServed(t, first, cos[0], f.killedAt, &f)
	f.creds = companyCreds(t, f.newActive.Client, cos, 16)
	f.allServedAt = time.Since(f.killedAt)
	f.tokenCalls = s.Calls(concurtest.EndpointToken) - calls
	f.pluginRSSKiB = f.newActive.pluginRSSKiB()
	for name, c := range f.creds {
		if before[name][0] == c[0] {
			f.sameTokens++
		}
	}
	return f
}

// waitServed polls the remaining nodes until one is active and then until the company's
// creds are served through it, recording both times since killedAt.
func waitServed(t testing.TB, nodes []*Node, co company, killedAt time.Time, f *failover) *Node {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, nd := range nodes {
			if ok, _ := nd.IsActive(); !ok {
				continue
			}
			if f.activeAfter == 0 {
				f.activeAfter = time.Since(killedAt)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			sec, err := nd.Client.Logical().ReadWithContext(ctx, mountPath+"/companies/"+co.name+"/creds")
			cancel()
			if err == nil && sec != nil && accessToken(sec) != "" {
				f.firstServedAt = time.Since(killedAt)
				return nd
			}
		}
	}
	t.Fatal("no remaining node served creds within 2 minutes of the kill")
	return nil
}

// A three-node raft cluster with 200 companies loses its active node (SIGKILL): the new
// active node serves every company its stored token without one Concur token call, and
// LIST -detailed through it agrees with the creds it serves.
func TestHAFailoverManyCompanies(t *testing.T) {
	t.Parallel()
	f := runFailover(t, 200)
	t.Logf("killed the active node; %s active after %s, first company served after %s, all %d after %s; plugin RSS %d KiB",
		f.newActive.cfg.Name, f.activeAfter.Round(time.Millisecond), f.firstServedAt.Round(time.Millisecond), f.companies,
		f.allServedAt.Round(time.Millisecond), f.pluginRSSKiB)
	if len(f.creds) != f.companies {
		t.Errorf("the new active node served %d of %d companies", len(f.creds), f.companies)
	}
	if f.sameTokens != f.companies {
		t.Errorf("%d of %d companies were served another token than before the kill (the stored ones were valid)",
			f.companies-f.sameTokens, f.companies)
	}
	if f.tokenCalls != 0 {
		t.Errorf("the new active node made %d Concur token calls serving stored, valid tokens", f.tokenCalls)
	}
	keys, info := listDetailed(t, f.newActive, f.newActive.RootToken, "")
	if len(keys) != f.companies {
		t.Fatalf("LIST through the new active node: %d companies, want %d", len(keys), f.companies)
	}
	sort.Strings(keys)
	for _, name := range keys {
		row, c := info[name], f.creds[name]
		if row["status"] != "ok" || row["access_token_expires_at"] != c[1] || row["refresh_token_expires_at"] == "" {
			t.Errorf("%s: LIST says %v; creds expire at %s", name, row, c[1])
		}
	}
}
