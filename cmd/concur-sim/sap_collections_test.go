package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// SAP's published Postman collections, run unmodified by newman against
// concur-sim over HTTPS with only the variables a user sets. The
// collections are not in this repository (they come from SAP's public
// repositories and are placed beside the clone); `make sap-collections`
// installs the pinned newman and points SAP_POSTMAN_DIR and NEWMAN here.
//
//	SAP-samples/concur-web-services-authentication (Apache-2.0):
//	  Authentication.postman_collection.json, Concur Default Env.postman_environment.json
//	SAP-docs/preview.developer.concur.com src/api-guides/postman/ (Apache-2.0), unzipped:
//	  auth-api-samples-postman-collection.json, concur-user-provisioning-postman-collection.json
const (
	sapAuthCollection    = "Authentication.postman_collection.json"
	sapAuthEnvironment   = "Concur Default Env.postman_environment.json"
	sapAuthSamples       = "auth-api-samples-postman-collection.json"
	sapUserProvisioning  = "concur-user-provisioning-postman-collection.json"
	sapSamplesCompany    = "b39ba8c9-0383-4b62-b384-37bcce4c060c" // hard-coded in the Auth API Samples password grant
	sapSamplesAuthToken  = "at-3wd0qnp3x6m5klel2vv5z083pex5py"
	newmanTimeout        = 3 * time.Minute
	notModelledByConcurS = "concur-sim does not model it: the gateway 404 that says so"
)

// The read-only folders of the user-provisioning collection (the others create, change or delete users).
var sapReadOnlyFolders = []string{"Retrieve Status", "Retrieve User", "Identity v4.1 Search", "Config endpoints"}

// sapExpect is what one request of a collection must get, and which of
// SAP's own test-script checks fail there and why. A failure is named by
// its pm.test name, "test-script" (an error outside any pm.test) or
// "request" (newman could not send it).
type sapExpect struct {
	status int
	shape  func(map[string]any) error
	fails  []string
	why    string
}

func TestSAPPostmanCollections(t *testing.T) {
	dir, newman := os.Getenv("SAP_POSTMAN_DIR"), os.Getenv("NEWMAN")
	if dir == "" || newman == "" {
		t.Skip("SAP_POSTMAN_DIR and NEWMAN not set: run `make sap-collections` (SAP's collections are not in this repository)")
	}
	for _, f := range []string{sapAuthCollection, sapAuthEnvironment, sapAuthSamples, sapUserProvisioning} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Skipf("SAP's collections are not in %s (%s missing): skipped", dir, f)
		}
	}
	tmp := t.TempDir()
	certFile, keyFile, pool := writeCert(t, tmp)
	s := start(t, "--tls-cert", certFile, "--tls-key", keyFile, "--company-uuid", sapSamplesCompany, "--request-token", sapSamplesAuthToken)
	host := strings.TrimPrefix(s.url, "https://")
	run := newmanRunner{t: t, newman: newman, dir: dir, tmp: tmp, ca: certFile}

	// Authentication (SAP-samples): the company request token for a refresh token, then an access token.
	envOut := filepath.Join(tmp, "env.json")
	run.check(sapAuthCollection, authExpectations(), "-e", filepath.Join(dir, sapAuthEnvironment),
		"--env-var", "dataCenterURI="+host, "--env-var", "clientId="+defaultClientID, "--env-var", "clientSecret="+defaultClientSecret,
		"--env-var", "companyUUID="+sapSamplesCompany, "--env-var", "requestToken="+sapSamplesAuthToken,
		"--export-environment", envOut)

	// User provisioning: the token the first collection left in its environment, as a user would copy it.
	token := exportedVariable(t, envOut, "accessToken")
	userID := firstUserID(t, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, s.url)
	args := []string{"--env-var", "scim_root=" + s.url + "/", "--env-var", "data_center=" + s.url,
		"--env-var", "token=" + token, "--env-var", "CRUD.user_id=" + userID}
	for _, f := range sapReadOnlyFolders {
		args = append(args, "--folder", f)
	}
	run.check(sapUserProvisioning, provisioningExpectations(userID), args...)

	// Auth API Samples (SAP-docs), last: it ends by revoking the connection.
	run.check(sapAuthSamples, authSamplesExpectations(), "--env-var", "HOST="+host,
		"--env-var", "APP_ID="+defaultClientID, "--env-var", "APP_SECRET="+defaultClientSecret)
}

type newmanRunner struct {
	t                    *testing.T
	newman, dir, tmp, ca string
}

// newmanReport is the part of newman's JSON reporter output checked here.
type newmanReport struct {
	Run struct {
		Executions []struct {
			Item     struct{ Name string } `json:"item"`
			Response *newmanResponse       `json:"response"`
		} `json:"executions"`
		Failures []struct {
			Source struct{ Name string } `json:"source"`
			At     string                `json:"at"`
			Error  struct {
				Test    string `json:"test"`
				Message string `json:"message"`
			} `json:"error"`
		} `json:"failures"`
	} `json:"run"`
}

// newmanResponse is an answer as newman's JSON reporter records it (the
// body as a Node.js Buffer: an array of byte values).
type newmanResponse struct {
	Code   int `json:"code"`
	Stream struct {
		Data []int `json:"data"`
	} `json:"stream"`
}

// check runs one collection and compares every request's answer and every
// failure of SAP's own scripts with want.
func (nr newmanRunner) check(collection string, want map[string]sapExpect, args ...string) {
	t := nr.t
	t.Helper()
	report := filepath.Join(nr.tmp, collection+".report.json")
	ctx, cancel := context.WithTimeout(context.Background(), newmanTimeout)
	defer cancel()
	cmdArgs := append([]string{"run", filepath.Join(nr.dir, collection), "--ssl-extra-ca-certs", nr.ca, "--suppress-exit-code",
		"--reporters", "cli,json", "--reporter-json-export", report, "--color", "off"}, args...)
	out, err := exec.CommandContext(ctx, nr.newman, cmdArgs...).CombinedOutput() //nolint:gosec // G204: the test's own newman
	if err != nil {
		t.Fatalf("newman %s: %v\n%s", collection, err, out)
	}
	var r newmanReport
	raw, err := os.ReadFile(report)
	if err == nil {
		err = json.Unmarshal(raw, &r)
	}
	if err != nil {
		t.Fatalf("newman %s: report: %v\n%s", collection, err, out)
	}
	failures := map[string][]string{}
	for _, f := range r.Run.Failures {
		kind := f.Error.Test
		switch {
		case f.At == "request":
			kind = "request"
		case kind == "":
			kind = "test-script"
		}
		failures[f.Source.Name] = append(failures[f.Source.Name], kind)
	}
	seen := map[string]bool{}
	for _, ex := range r.Run.Executions {
		name := ex.Item.Name
		seen[name] = true
		exp, ok := want[name]
		if !ok {
			t.Errorf("%s: %q: no expectation for this request", collection, name)
			continue
		}
		if msg := checkExecution(exp, ex.Response); msg != "" {
			t.Errorf("%s: %q: %s", collection, name, msg)
		}
		got := append([]string(nil), failures[name]...)
		sort.Strings(got)
		wantFails := append([]string(nil), exp.fails...)
		sort.Strings(wantFails)
		if fmt.Sprint(got) != fmt.Sprint(wantFails) {
			t.Errorf("%s: %q: SAP's checks failed %q, want %q (%s)", collection, name, got, wantFails, exp.why)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s: %q was not run", collection, name)
		}
	}
	if t.Failed() {
		t.Logf("newman %s:\n%s", collection, out)
	}
}

// checkExecution compares one answer with its expectation; "" when it matches.
func checkExecution(exp sapExpect, resp *newmanResponse) string {
	if resp == nil {
		if exp.status == 0 {
			return ""
		}
		return fmt.Sprintf("no answer, want %d", exp.status)
	}
	if resp.Code != exp.status {
		return fmt.Sprintf("status %d, want %d", resp.Code, exp.status)
	}
	body := make([]byte, len(resp.Stream.Data))
	for i, b := range resp.Stream.Data {
		if b < 0 || b > 255 {
			return fmt.Sprintf("body byte %d is %d", i, b)
		}
		body[i] = byte(b)
	}
	var m map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			return fmt.Sprintf("body is not JSON: %.200s", body)
		}
	}
	if exp.shape == nil {
		return ""
	}
	if err := exp.shape(m); err != nil {
		return fmt.Sprintf("%v: %.300s", err, body)
	}
	return ""
}

func exportedVariable(t *testing.T, file, key string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Values []struct{ Key, Value string } `json:"values"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	for _, v := range env.Values {
		if v.Key == key && v.Value != "" {
			return v.Value
		}
	}
	t.Fatalf("the Authentication collection left no %s", key)
	return ""
}

func firstUserID(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	resp, err := get(c, base+"/_sim/users")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var users []struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&users); err != nil || len(users) == 0 {
		t.Fatalf("/_sim/users: %v", err)
	}
	return users[0].ID
}
