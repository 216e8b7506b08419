package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Issue 10 point 7, through real Vault: a user whose Identity record carries
// Vault's raw-response keys (http_status_code, http_content_type,
// http_raw_body, ...) must not change the status, headers or body Vault sends.
func TestProfileRawResponseKeysStayData(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{Users: 3})
	n := StartInitUnseal(t, storageInmem)
	SetupPlugin(t, mountPath, n)
	c := n.Client
	s.bootstrap(t, c, mountPath)
	user := s.Users(s.Company)[1]
	if !s.SetUserAttributes(s.Company, user.ID, map[string]any{
		"http_status_code":                   307,
		"http_content_type":                  "text/html",
		"http_raw_body":                      "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
		"http_raw_body_already_json_decoded": true,
		"http_raw_cache_control":             "public, max-age=31536000",
		"http_raw_pragma":                    "cache",
		"http_www_authenticate":              "Basic realm=x",
	}) {
		t.Fatal("simulator does not know the user")
	}

	for _, path := range []string{mountPath + "/profile/" + user.ID} {
		resp, err := c.Logical().ReadRawWithContext(ctxT(t, time.Minute), path)
		if resp == nil || resp.Response == nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: HTTP %d, want 200", path, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q, want application/json", path, ct)
		}
		for _, h := range []string{"Cache-Control", "Pragma", "WWW-Authenticate"} {
			if v := resp.Header.Get(h); v != "" && v != "no-store" {
				t.Errorf("GET %s: header %s: %q came from upstream data", path, h, v)
			}
		}
		var body struct {
			Data map[string]map[string]any `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("GET %s: body is not Vault's JSON envelope: %v", path, err)
		}
		u := body.Data["user"]
		if u["id"] != user.ID || u["http_status_code"] != float64(307) || u["http_content_type"] != "text/html" {
			t.Errorf("GET %s: data.user = %v, want the user with its attributes as plain data", path, u)
		}
	}

	// The roster (issue 11 point 3) through real Vault: one page per read,
	// users nested under "users", next_cursor to go on.
	page, err := c.Logical().ReadWithDataWithContext(ctxT(t, time.Minute), mountPath+"/profile", map[string][]string{"count": {"2"}})
	if err != nil || page == nil {
		t.Fatalf("roster page: %v", err)
	}
	users, _ := page.Data["users"].([]any)
	next, _ := page.Data["next_cursor"].(string)
	if len(users) != 2 || next == "" {
		t.Fatalf("roster page 1: %d users, next_cursor %q", len(users), next)
	}
	page, err = c.Logical().ReadWithDataWithContext(ctxT(t, time.Minute), mountPath+"/profile",
		map[string][]string{"count": {"2"}, "cursor": {next}})
	if err != nil || page == nil {
		t.Fatalf("roster page 2: %v", err)
	}
	if users, _ := page.Data["users"].([]any); len(users) != 1 || page.Data["next_cursor"] != "" {
		t.Fatalf("roster page 2: %v", page.Data)
	}
	if _, top := page.Data["http_status_code"]; top {
		t.Error("an upstream key reached the top level of the roster response")
	}
}
