package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// readmeImportLine is the documented one-line import of SAP's tutorial
// files, taken from README.md so that the test runs exactly what users copy.
func readmeImportLine(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "jq -s ") && strings.Contains(line, "refreshTokenObjectFile.json") {
			return line
		}
	}
	t.Fatal("README.md has no jq import line")
	return ""
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Issue 11 point 4: the README's jq + vault CLI line moves the files of
// SAP's tutorial (credentials.json and refreshTokenObjectFile.json, in the
// tutorial's format) into the engine, which checks the refresh token at the
// file's geolocation.
func TestImportTutorialFiles(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("jq is not installed")
	}
	s := newSim(t, concurtest.Options{DataCenters: []string{concurtest.LandingZone, "us2", "eu2"}})
	s.AddCompany(s.Company, "eu2")
	n := StartInitUnseal(t, storageInmem)
	SetupPlugin(t, mountPath, n)
	c := n.Client

	// What the tutorial left on disk: its password grant's whole answer
	// plus companyUUID (reference notes 1.1).
	dir := t.TempDir()
	rt := s.NewRequestToken(s.ClientID, s.Company)
	grant := tutorialPasswordGrant(t, s, rt)
	grant["companyUUID"] = s.Company
	writeJSONFile(t, filepath.Join(dir, "credentials.json"), map[string]any{"appID": s.ClientID, "clientSecret": s.ClientSecret,
		"grantType": "password", "companyUUID": s.Company, "companyRequestToken": rt, "credentialType": "authtoken"})
	writeJSONFile(t, filepath.Join(dir, "refreshTokenObjectFile.json"), grant)

	// The mount allows the simulator's loopback hosts (an operator's earlier
	// settings); the import line itself is exactly the README's.
	if _, err := c.Logical().Write(mountPath+"/config", map[string]any{"client_id": "placeholder", "client_secret": "placeholder",
		"company_uuid": randUUID(), "allowed_hosts": "http://127.0.0.1:*", "base_url": s.URLOf(concurtest.LandingZone)}); err != nil {
		t.Fatalf("pre-configure allowed_hosts: %v", err)
	}
	tokenCalls := s.CallsAt("eu2", concurtest.EndpointToken)
	cmd := exec.CommandContext(context.Background(), "sh", "-c", readmeImportLine(t))
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "VAULT_ADDR="+n.Addr, "VAULT_TOKEN="+n.RootToken,
		"PATH="+filepath.Dir(vaultBin(t))+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	mustNotContain(t, "import output", string(out), map[string]string{"refresh token": grant["refresh_token"].(string),
		"client secret": s.ClientSecret})
	if err != nil {
		t.Fatalf("import line failed: %v\n%s", err, out)
	}

	cfg := readConfig(t, c, mountPath)
	if cfg["status"] != "ok" || cfg["client_id"] != s.ClientID || cfg["company_uuid"] != s.Company || cfg["geolocation"] != s.URLOf("eu2") {
		t.Fatalf("config after import: %v", cfg)
	}
	if got := s.CallsAt("eu2", concurtest.EndpointToken) - tokenCalls; got != 1 {
		t.Errorf("refresh grants at the file's geolocation: %d, want 1", got)
	}
	if accessToken(readCreds(t, c, mountPath, 0)) == "" {
		t.Error("no creds after import")
	}
}

// tutorialPasswordGrant runs Tutorial 1's request at the landing zone and
// returns the JSON answer as the tutorial stores it.
func tutorialPasswordGrant(t *testing.T, s *sim, requestToken string) map[string]any {
	t.Helper()
	form := "client_id=" + s.ClientID + "&client_secret=" + s.ClientSecret + "&grant_type=password&username=" + s.Company +
		"&password=" + requestToken + "&credtype=authtoken"
	req, err := newFormRequest(s.URLOf(concurtest.LandingZone)+"/oauth2/v0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Client().Do(req.WithContext(ctxT(t, 30*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("tutorial password grant: %d %v", resp.StatusCode, err)
	}
	return body
}

func newFormRequest(url, form string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader(form))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req, nil
}
