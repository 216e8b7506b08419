package backend

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// listCompanies LISTs companies/ with data and returns keys and key_info.
func (e *testEnv) listCompanies(data map[string]any) ([]string, map[string]map[string]any) {
	e.t.Helper()
	resp := e.mustOK(logical.ListOperation, "companies/", data)
	keys, _ := resp.Data["keys"].([]string)
	info := map[string]map[string]any{}
	raw, _ := resp.Data["key_info"].(map[string]any)
	for k, v := range raw {
		info[k], _ = v.(map[string]any)
	}
	return keys, info
}

// LIST companies/ answers each company's state in key_info, as its read
// shows it, without a secret: one ok, one Concur refused (needs_bootstrap,
// with Concur's code), one whose renewal failed upstream (degraded).
func TestCompaniesListDetailed(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.connect("acme", 1, "us2")
	revoked := e.connect("globex", 2, "")
	e.connect("initech", 3, "emea")
	e.mustOK(logical.UpdateOperation, "companies/initech", map[string]any{"prewarm": true})
	e.sim.RevokeConnection(testClientID, revoked)
	if _, err := e.request(logical.UpdateOperation, "companies/globex/rotate", nil); err == nil {
		t.Fatal("rotate of a revoked company succeeded")
	}
	e.sim.InjectFault(concurtest.EndpointToken, 10, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 503})
	if _, err := e.request(logical.UpdateOperation, "companies/initech/rotate", nil); err == nil {
		t.Fatal("rotate during a Concur outage succeeded")
	}
	e.sim.ClearFaults()

	keys, info := e.listCompanies(nil)
	if fmt.Sprint(keys) != "[acme globex initech]" || len(info) != 3 {
		t.Fatalf("keys %v, key_info for %d", keys, len(info))
	}
	want := map[string]struct{ status, code string }{
		"acme": {statusOK, ""}, "globex": {statusNeedsBootstrap, "108"}, "initech": {statusDegraded, "http_503"},
	}
	for name, w := range want {
		row := info[name]
		read := e.mustOK(logical.ReadOperation, "companies/"+name, nil).Data
		if row["status"] != w.status || row["last_error_code"] != w.code || read["last_error_code"] != w.code {
			t.Errorf("%s: status %v code %v (read: %v), want %s %q",
				name, row["status"], row["last_error_code"], read["last_error_code"], w.status, w.code)
		}
		for _, k := range []string{"status", "geolocation", "access_token_expires_at", "refresh_token_expires_at", "last_error_at", "prewarm"} {
			if row[k] != read[k] {
				t.Errorf("%s: key_info %s = %v, companies/%s read says %v", name, k, row[k], name, read[k])
			}
		}
		if len(row) != 7 {
			t.Errorf("%s: key_info has %d fields, want 7: %v", name, len(row), row)
		}
	}
	if info["acme"]["geolocation"] != e.sim.URLOf("us2") || info["acme"]["access_token_expires_at"] == "" ||
		info["acme"]["refresh_token_expires_at"] == "" || info["acme"]["last_error_at"] != "" {
		t.Errorf("acme's row %v: want its data centre and both expiries, no error", info["acme"])
	}
	if info["initech"]["prewarm"] != true || info["globex"]["last_error_at"] == "" {
		t.Errorf("rows %v, %v: want initech prewarm, globex's error time", info["initech"], info["globex"])
	}
	text := fmt.Sprint(info)
	for _, s := range e.secrets() {
		if s != "" && strings.Contains(text, s) {
			t.Error("key_info shows a secret")
		}
	}
	for _, name := range []string{"acme", "initech"} {
		if tok := e.companyEntry(name).Token; strings.Contains(text, tok.AccessToken) || strings.Contains(text, tok.RefreshToken) {
			t.Errorf("key_info shows %s's tokens", name)
		}
	}
}

// status= keeps the companies in that state; after= and limit= page
// through names in order, counting only those kept.
func TestCompaniesListFilterAndPaging(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	var revoked []string
	for i := range 7 {
		name := fmt.Sprintf("co%d", i)
		uuid := e.connect(name, i+1, "")
		if i%3 == 0 { // co0, co3, co6
			e.sim.RevokeConnection(testClientID, uuid)
			if _, err := e.request(logical.UpdateOperation, "companies/"+name+"/rotate", nil); err == nil {
				t.Fatalf("rotate of revoked %s succeeded", name)
			}
			revoked = append(revoked, name)
		}
	}
	cases := []struct {
		query map[string]any
		want  string
	}{
		{map[string]any{"status": statusNeedsBootstrap}, fmt.Sprint(revoked)},
		{map[string]any{"status": statusOK}, "[co1 co2 co4 co5]"},
		{map[string]any{"status": statusDegraded}, "[]"},
		{map[string]any{"limit": "3"}, "[co0 co1 co2]"},
		{map[string]any{"after": "co2", "limit": 3}, "[co3 co4 co5]"},
		{map[string]any{"after": "co5", "limit": "3"}, "[co6]"},
		{map[string]any{"after": "co6"}, "[]"},
		{map[string]any{"after": "co10"}, "[co2 co3 co4 co5 co6]"}, // names sort as strings
		{map[string]any{"status": statusOK, "after": "co1", "limit": "2"}, "[co2 co4]"},
		{map[string]any{"limit": "0"}, "[co0 co1 co2 co3 co4 co5 co6]"},
	}
	for _, c := range cases {
		keys, info := e.listCompanies(c.query)
		if fmt.Sprint(keys) != c.want || len(info) != len(keys) {
			t.Errorf("LIST %v = %v (key_info for %d), want %s", c.query, keys, len(info), c.want)
		}
	}
}

// A stored entry that cannot be decoded is listed as unreadable (status=
// unreadable finds it), next to the others.
func TestCompaniesListShowsUnreadable(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	e.connect("acme", 1, "")
	e.putRaw(companyStorageKey("bad"), `{"company_uuid": "x", "prewarm": "yes"}`)
	fresh := e.newInstance()
	resp, err := requestOn(fresh, e.storage, logical.ListOperation, "companies/", map[string]any{"status": statusUnreadable})
	if err != nil || resp == nil || resp.IsError() {
		t.Fatalf("LIST status=unreadable: %v %v", resp, err)
	}
	info, _ := resp.Data["key_info"].(map[string]any)
	if fmt.Sprint(resp.Data["keys"]) != "[bad]" || fmt.Sprint(info["bad"]) == "" {
		t.Fatalf("LIST status=unreadable: %v", resp.Data)
	}
	if row, _ := info["bad"].(map[string]any); row["status"] != statusUnreadable || len(row) != 7 {
		t.Errorf("the unreadable company's row: %v", row)
	}
	resp, err = requestOn(fresh, e.storage, logical.ListOperation, "companies/", nil)
	if err != nil || fmt.Sprint(resp.Data["keys"]) != "[acme bad]" {
		t.Errorf("LIST: %v %v", resp, err)
	}
}

// Bad parameters are refused naming the field; a company deleted is gone
// from the list.
func TestCompaniesListRefusesBadParameters(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	e.connect("acme", 1, "")
	e.connect("globex", 2, "")
	for _, c := range []struct {
		data  map[string]any
		field string
	}{
		{map[string]any{"status": "broken"}, "status"},
		{map[string]any{"limit": "-1"}, "limit"},
		{map[string]any{"limit": "many"}, "limit"},
		{map[string]any{"statuses": "ok"}, "statuses"},
	} {
		resp, err := e.request(logical.ListOperation, "companies/", c.data)
		msg := fmt.Sprint(err)
		if resp != nil && resp.IsError() {
			msg = resp.Error().Error()
		}
		if err == nil && (resp == nil || !resp.IsError()) || !strings.Contains(msg, c.field) {
			t.Errorf("LIST %v: %v / %v, want an error naming %s", c.data, resp, err, c.field)
		}
	}
	e.mustOK(logical.DeleteOperation, "companies/acme", nil)
	if keys, _ := e.listCompanies(nil); fmt.Sprint(keys) != "[globex]" {
		t.Errorf("after delete: %v", keys)
	}
}

// A failure that is not Concur's answer leaves no code; a success clears
// the code of the failure before it.
func TestFailureCodeClearedBySuccess(t *testing.T) {
	e := newPartnerEnv(t, concurtest.Options{})
	e.connect("acme", 1, "")
	e.sim.InjectFault(concurtest.EndpointToken, 10, concurtest.Fault{Kind: concurtest.FaultDrop})
	if _, err := e.request(logical.UpdateOperation, "companies/acme/rotate", nil); err == nil {
		t.Fatal("rotate with every answer dropped succeeded")
	}
	if _, info := e.listCompanies(nil); info["acme"]["last_error_code"] != "no_response" {
		t.Errorf("after dropped answers: code %v, want no_response", info["acme"]["last_error_code"])
	}
	e.sim.ClearFaults()
	e.clock.Advance(10 * time.Minute) // past the backoff
	e.mustOK(logical.UpdateOperation, "companies/acme/rotate", nil)
	if _, info := e.listCompanies(nil); info["acme"]["last_error_code"] != "" || info["acme"]["status"] != statusOK {
		t.Errorf("after a success: %v", info["acme"])
	}
	if got := failureCode(fmt.Errorf("writing companies/acme to storage: %w", logical.ErrReadOnly)); got != "" {
		t.Errorf("storage failure code %q, want none", got)
	}
}
