package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// sim is an in-process Concur simulator with one client and one company seeded. Vault's
// plugin process reaches it over loopback HTTP like any other upstream.
type sim struct {
	*concurtest.Server
	ClientID     string
	ClientSecret string
	Company      string
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func randUUID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func newSim(t testing.TB, opts concurtest.Options) *sim {
	t.Helper()
	if opts.Logf == nil && os.Getenv("E2E_SIM_LOG") == "1" {
		opts.Logf = func(format string, args ...any) { t.Logf("sim: "+format, args...) }
	}
	s := concurtest.NewServer(opts)
	t.Cleanup(s.Close)
	e := &sim{Server: s, ClientID: "e2e-" + randHex(6), ClientSecret: "cs-" + randHex(20), Company: randUUID()}
	s.AddClient(e.ClientID, e.ClientSecret)
	s.AddCompany(e.Company, "")
	return e
}

// configData returns a concur/config write for this simulator plus extra fields.
func (s *sim) configData(extra map[string]any) map[string]any {
	d := map[string]any{
		"client_id":     s.ClientID,
		"client_secret": s.ClientSecret,
		"company_uuid":  s.Company,
		"base_url":      s.URL,
		"allowed_hosts": "http://127.0.0.1:*",
	}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

func (s *sim) currentRefresh() string { return s.CurrentRefreshToken(s.ClientID, s.Company) }

// bootstrap writes <mount>/config with a fresh company request token and returns the token.
func (s *sim) bootstrap(t testing.TB, c *api.Client, mount string) string {
	t.Helper()
	rt := s.NewRequestToken(s.ClientID, s.Company)
	cfg := s.configData(map[string]any{"request_token": rt})
	if _, err := c.Logical().WriteWithContext(ctxT(t, 2*time.Minute), mount+"/config", cfg); err != nil {
		t.Fatalf("write %s/config with request_token: %v", mount, err)
	}
	return rt
}

// readCreds reads <mount>/creds (with optional min_ttl) and checks the response shape.
func readCreds(t testing.TB, c *api.Client, mount string, minTTL int) *api.Secret {
	t.Helper()
	var q map[string][]string
	if minTTL > 0 {
		q = map[string][]string{"min_ttl": {fmt.Sprint(minTTL)}}
	}
	sec, err := c.Logical().ReadWithDataWithContext(ctxT(t, 2*time.Minute), mount+"/creds", q)
	if err != nil {
		t.Fatalf("read %s/creds: %v", mount, err)
	}
	if sec == nil || sec.Data == nil {
		t.Fatalf("read %s/creds: empty response", mount)
	}
	for _, k := range []string{"access_token", "token_type", "expires_at", "ttl"} {
		if _, ok := sec.Data[k]; !ok {
			t.Fatalf("read %s/creds: no %q in %v", mount, k, keys(sec.Data))
		}
	}
	if tok, _ := sec.Data["access_token"].(string); tok == "" {
		t.Fatalf("read %s/creds: empty access_token", mount)
	}
	if sec.LeaseID != "" || sec.Renewable {
		t.Fatalf("read %s/creds: unexpected lease %q renewable=%v", mount, sec.LeaseID, sec.Renewable)
	}
	return sec
}

func accessToken(sec *api.Secret) string { s, _ := sec.Data["access_token"].(string); return s }

func readConfig(t testing.TB, c *api.Client, mount string) map[string]any {
	t.Helper()
	sec, err := c.Logical().ReadWithContext(ctxT(t, time.Minute), mount+"/config")
	if err != nil {
		t.Fatalf("read %s/config: %v", mount, err)
	}
	if sec == nil {
		t.Fatalf("read %s/config: not found", mount)
		return nil
	}
	return sec.Data
}

func rotate(c *api.Client, mount string) (*api.Secret, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return c.Logical().WriteWithContext(ctx, mount+"/rotate", nil)
}

// rawGet reads path (no /v1/ prefix) and returns the HTTP status and body, whatever the status.
func rawGet(t testing.TB, c *api.Client, path string) (int, string) {
	t.Helper()
	resp, err := c.Logical().ReadRawWithContext(ctxT(t, time.Minute), path)
	if resp == nil || resp.Response == nil {
		t.Fatalf("GET %s: %v", path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// mustNotContain fails when the JSON form of v contains any of the secrets.
func mustNotContain(t testing.TB, what string, v any, secrets map[string]string) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range secrets {
		if s != "" && strings.Contains(string(b), s) {
			t.Fatalf("%s contains the %s", what, name)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		return strings.Join(re.Errors, "; ")
	}
	return err.Error()
}

// asInt converts a JSON number as decoded by the api client (json.Number) to int64.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			f, ferr := x.Float64()
			return int64(f), ferr == nil
		}
		return i, true
	case float64:
		return int64(x), true
	case int:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}
