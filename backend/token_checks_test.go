package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Tests of what a 2xx token answer carries beyond its tokens (issues 10.3
// and 11.5): wrong-type fields, a missing access token, another company.

const otherCompany = "5b1d3c2e-9f4a-4e8b-a7c6-1d2e3f4a5b6c"

func hasWarning(resp *logical.Response, parts ...string) bool {
	if resp == nil {
		return false
	}
	for _, w := range resp.Warnings {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(w, p)
		}
		if all {
			return true
		}
	}
	return false
}

// Wrong-type fields in a 2xx are logged and shown by name (never value) on
// the response that got them and in config read, until a clean answer.
func TestWrongTypeFieldsAreWarnedUntilACleanAnswer(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.sim.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{Kind: concurtest.FaultWrongTypes})
	if resp := e.bootstrap(); !hasWarning(resp, "scope", "token_type", "expires_in") {
		t.Errorf("config write warnings %q do not name the garbled fields", resp.Warnings)
	}
	e.sim.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{Kind: concurtest.FaultWrongTypes, Fields: []string{"scope"}})
	resp := e.mustOK(logical.UpdateOperation, "rotate", nil)
	if !hasWarning(resp, "scope", "array") || hasWarning(resp, "token_type") {
		t.Errorf("rotate warnings %q, want scope only", resp.Warnings)
	}
	e.assertCustody()
	if !strings.Contains(e.logs.String(), "unusable fields") {
		t.Errorf("no warning logged")
	}

	read := e.mustOK(logical.ReadOperation, "config", nil)
	if w := read.Data["warnings"].([]string); len(w) != 1 || !strings.Contains(w[0], "scope") {
		t.Errorf("config read warnings field %q", w)
	}
	if !hasWarning(read, "scope") || read.Data["status"] != statusOK {
		t.Errorf("config read: warnings %q, status %v", read.Warnings, read.Data["status"])
	}
	for _, w := range read.Warnings {
		if strings.Contains(w, "openid") {
			t.Errorf("a warning quotes a value: %q", w)
		}
	}

	e.mustOK(logical.UpdateOperation, "rotate", nil)
	read = e.mustOK(logical.ReadOperation, "config", nil)
	if w := read.Data["warnings"].([]string); len(w) != 0 || len(read.Warnings) != 0 {
		t.Errorf("after a clean answer: warnings field %q, response warnings %q", w, read.Warnings)
	}
}

// A 2xx with a refresh token and no access token: the refresh token is
// stored, nothing unusable is served, the next read gets an access token
// with one more grant; answers like it in a row back off (fails while the
// engine served an empty access token).
func TestRefreshOnlyAnswerIsStoredAndFollowedByOneGrant(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	e.clock.Advance(61 * time.Minute)
	grants := e.refreshGrants()
	noAccess := concurtest.Fault{Kind: concurtest.FaultWrongTypes, Fields: []string{"access_token"}}
	e.sim.InjectFault(concurtest.EndpointToken, 1, noAccess)

	_, err := e.request(logical.ReadOperation, "creds", nil)
	if codeOf(err) != 502 || !strings.Contains(err.Error(), "no access token") {
		t.Fatalf("first read: %v", err)
	}
	e.assertCustody()
	if st := e.storedToken(); st.AccessToken != "" || e.refreshGrants() != grants+1 {
		t.Fatalf("stored access token %q, %d grants", st.AccessToken, e.refreshGrants()-grants)
	}
	data := e.creds()
	if data["access_token"] == "" || e.refreshGrants() != grants+2 {
		t.Fatalf("next read: token %v after %d grants", data["access_token"] != "", e.refreshGrants()-grants)
	}
	e.assertCustody()

	// Concur keeps answering so: reads cause a bounded number of grants.
	e.clock.Advance(61 * time.Minute)
	grants = e.refreshGrants()
	e.sim.InjectFault(concurtest.EndpointToken, 100, noAccess)
	for range 10 {
		_, _ = e.request(logical.ReadOperation, "creds", nil)
	}
	if n := e.refreshGrants() - grants; n != 2 {
		t.Errorf("10 reads made %d grants, want 2 (one at once, then backoff)", n)
	}
	e.assertCustody()
}

// Bootstrap and import refuse a token naming another company: 400 naming
// company_uuid, nothing stored.
func TestBootstrapRefusesAnotherCompanysToken(t *testing.T) {
	for _, field := range []string{"request_token", "refresh_token"} {
		t.Run(field, func(t *testing.T) {
			e := newTestEnv(t, concurtest.Options{})
			e.sim.SetIDTokenSubject(testCompany, otherCompany)
			data := e.baseConfig()
			if field == "request_token" {
				data[field] = e.sim.NewRequestToken(testClientID, testCompany)
			} else {
				data[field] = e.sim.NewRefreshToken(testClientID, testCompany)
			}
			_, err := e.request(logical.CreateOperation, "config", data)
			if codeOf(err) != 400 || !strings.HasPrefix(err.Error(), "company_uuid") || !strings.Contains(err.Error(), otherCompany) {
				t.Fatalf("config write: %v", err)
			}
			if st := e.storedToken(); st.RefreshToken != "" {
				t.Errorf("a token was stored")
			}
			if resp, _ := e.request(logical.ReadOperation, "config", nil); resp != nil {
				t.Errorf("config exists after a refused bootstrap")
			}
		})
	}
}

// A refresh naming another company: the new refresh token is stored (the
// grant happened), its access token is not served, status degraded with
// both UUIDs, backing off; service resumes once Concur names us again.
func TestRefreshNamingAnotherCompanyIsDegraded(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	e.sim.SetIDTokenSubject(testCompany, otherCompany)
	_, err := e.request(logical.UpdateOperation, "rotate", nil)
	if codeOf(err) != 502 || !strings.Contains(err.Error(), otherCompany) || !strings.Contains(err.Error(), testCompany) {
		t.Fatalf("rotate: %v", err)
	}
	e.assertCustody()
	if st := e.storedToken(); st.AccessToken != "" || !st.NextAttemptAt.After(e.clock.Now()) {
		t.Errorf("access token kept (%v) or no backoff (next attempt %v)", st.AccessToken != "", st.NextAttemptAt)
	}
	read := e.mustOK(logical.ReadOperation, "config", nil)
	if read.Data["status"] != statusDegraded || !strings.Contains(read.Data["last_error"].(string), otherCompany) {
		t.Errorf("config read: status %v, last_error %v", read.Data["status"], read.Data["last_error"])
	}
	grants := e.refreshGrants()
	if _, err := e.request(logical.ReadOperation, "creds", nil); codeOf(err) != 502 || e.refreshGrants() != grants {
		t.Errorf("creds while backing off: %v after %d grants", err, e.refreshGrants()-grants)
	}

	e.sim.SetIDTokenSubject(testCompany, "")
	e.clock.Advance(backoffMax)
	if data := e.creds(); data["access_token"] == "" {
		t.Errorf("no token served after Concur named the company again")
	}
	e.assertCustody()
}
