package backend

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// The default company is configured through config only: writes and
// deletes of companies/default are refused with a 400 naming the path and
// config, and change nothing; its reads keep working.
func TestDefaultCompanyIsWrittenThroughConfigOnly(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	e.bootstrap()
	other := companyUUID(7)
	e.sim.AddCompany(other, "us2")
	before := e.creds()["access_token"]
	writes := []struct {
		op   logical.Operation
		data map[string]any
	}{
		{logical.UpdateOperation, map[string]any{"company_uuid": other, "request_token": e.sim.NewRequestToken(testClientID, other)}},
		{logical.CreateOperation, map[string]any{"company_uuid": other, "request_token": e.sim.NewRequestToken(testClientID, other)}},
		{logical.UpdateOperation, map[string]any{"prewarm": false}},
		{logical.DeleteOperation, nil},
		{logical.DeleteOperation, map[string]any{"revoke": true}},
	}
	for _, w := range writes {
		resp, err := e.request(w.op, "companies/default", w.data)
		if err != nil || resp == nil || !resp.IsError() {
			t.Fatalf("%s companies/default %v: %v %v, want a 400", w.op, keysOf(w.data), resp, err)
		}
		if msg := resp.Error().Error(); !strings.Contains(msg, "companies/default") || !strings.Contains(msg, "config") {
			t.Errorf("%s companies/default: %q does not name the path and config", w.op, msg)
		}
	}
	d := e.mustOK(logical.ReadOperation, "companies/default", nil).Data
	if d["company_uuid"] != testCompany || d["prewarm"] != true || d["status"] != statusOK {
		t.Errorf("companies/default after the refused writes: %v", d)
	}
	if got := e.mustOK(logical.ReadOperation, "companies/default/creds", nil).Data["access_token"]; got != before {
		t.Error("companies/default/creds serves another token after the refused writes")
	}
	if e.sim.Calls(concurtest.EndpointConnections) != 0 {
		t.Error("a refused delete revoked the default company's connection at Concur")
	}
	// Named companies are written as before.
	e.connect("acme", 1, "")
	e.mustOK(logical.DeleteOperation, "companies/acme", nil)
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// delete companies/<name> revoke=true counts the connection as revoked only
// when Concur's refusal of the refresh token means it is gone (108). A
// refusal of the app (59, 61, 64) or of a disabled company (53, 123) keeps
// the company and its refresh token and fails the delete, naming Concur's
// status, code and correlation id.
func TestRevokeDeletesOnlyWhenConcurSaysTheConnectionIsGone(t *testing.T) {
	for _, code := range []int{concur.CodeClientDisabled, concur.CodeClientNotFound, concur.CodeBadClientSecret,
		concur.CodeCompanyNotEnabled, concur.CodePrincipalDisabled, concur.CodeBadRefreshToken} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			e := newPartnerEnv(t, concurtest.Options{})
			uuid := e.connect("acme", 1, "us2")
			refresh := e.companyEntry("acme").Token.RefreshToken
			// Concur refuses the bearer token, then the refresh grant that checks the connection.
			e.sim.InjectFault(concurtest.EndpointConnections, 1, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 401})
			e.sim.InjectFault(concurtest.EndpointToken, 1, concurtest.Fault{Kind: concurtest.FaultOAuthError, Code: code})
			_, err := e.request(logical.DeleteOperation, "companies/acme", map[string]any{"revoke": true})
			stored, found := storedCompany(e.storage, "acme")
			if code == concur.CodeBadRefreshToken {
				if err != nil || found {
					t.Fatalf("code 108: delete %v, still stored %v; want the company deleted", err, found)
				}
				return
			}
			if err == nil || !found || stored.Token.RefreshToken != refresh {
				t.Fatalf("code %d: delete %v, stored %v; want the delete refused and the refresh token kept", code, err, found)
			}
			msg := err.Error()
			for _, want := range []string{"companies/acme was not deleted", fmt.Sprintf("(code %d)", code), "HTTP 40", "correlation id "} {
				if !strings.Contains(msg, want) {
					t.Errorf("code %d: error %q does not name %q", code, msg, want)
				}
			}
			if e.sim.CurrentRefreshToken(testClientID, uuid) != refresh {
				t.Errorf("code %d: the connection changed at Concur", code)
			}
		})
	}
}

// On a v0.1.0 layout, a read of companies/default before anything else
// loaded the app answers the company: on the node that upgrades the layout
// and on one that may not write (which serves it from the v0.1.0 entry).
func TestDefaultCompanyReadFirstOnV010Layout(t *testing.T) {
	for _, mayWrite := range []bool{true, false} {
		t.Run(fmt.Sprint("may write ", mayWrite), func(t *testing.T) {
			e := newTestEnv(t, concurtest.Options{})
			e.bootstrap()
			live := e.asV010Layout()
			if !mayWrite {
				e.asReplicationState(consts.ReplicationPerformanceStandby, false)
			}
			b := e.newInstance()
			resp, err := requestOn(b, e.storage, logical.ReadOperation, "companies/default", nil)
			if err != nil || resp == nil || resp.IsError() {
				t.Fatalf("read companies/default first on a v0.1.0 layout: %v %v, want the company", resp, err)
			}
			if resp.Data["company_uuid"] != live.CompanyUUID || resp.Data["status"] != statusOK {
				t.Errorf("companies/default = %v", resp.Data)
			}
		})
	}
}
