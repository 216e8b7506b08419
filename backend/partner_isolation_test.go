package backend

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// partnerMount is the acceptance of issue 18: 2,000 companies on one mount,
// some of them broken, run for a month on the controllable clock.
type partnerMount struct {
	e     *testEnv
	b     *backend // a fresh instance: every company loaded from storage
	start time.Time
}

func (p *partnerMount) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	return requestOn(p.b, p.e.storage, op, path, data)
}

const (
	partnerCompanies = 2000
	undecodable      = "c0001" // its entry is damaged in storage
	identityRefused  = "c0002" // Concur's Identity refuses its reads
	markedAhead      = "c0003" // a marker from a node whose clock runs an hour ahead
	keptReady        = "c0000" // prewarm: renewed before every expiry
)

func partnerName(i int) string { return fmt.Sprintf("c%04d", i) }

// newPartnerMount connects the companies, breaks three of them in storage
// and at Concur, and starts a fresh instance on that storage.
func newPartnerMount(t *testing.T) *partnerMount {
	e := newPartnerEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate, Users: 1})
	for i := range partnerCompanies {
		e.connect(partnerName(i), i+1, "")
	}
	e.mustOK(logical.UpdateOperation, "companies/"+keptReady, map[string]any{"prewarm": true})
	e.putRaw(companyStorageKey(undecodable), `{"company_uuid": "x", "prewarm": "yes"}`)
	st, _ := storedCompany(e.storage, markedAhead)
	st.Token.Grant = &grantMarker{RefreshToken: tokenFingerprint(st.Token.RefreshToken),
		Until: e.clock.Now().Add(time.Hour + maxMarkerLife), Instance: "a-node-an-hour-ahead"}
	if err := putJSON(context.Background(), e.storage, companyStorageKey(markedAhead), &st); err != nil {
		t.Fatal(err)
	}
	return &partnerMount{e: e, b: e.newInstance(), start: e.clock.Now()}
}

// failOnboarding makes n onboarding writes with fresh names that Concur refuses.
func (p *partnerMount) failOnboarding(n int) {
	for i := range n {
		resp, err := p.do(logical.CreateOperation, fmt.Sprintf("companies/onboarding-%d", i), map[string]any{
			"company_uuid": companyUUID(100000 + i), "request_token": "a-mistyped-request-token"})
		if err == nil && !resp.IsError() {
			p.e.t.Fatalf("an onboarding write with a made-up request token succeeded")
		}
	}
}

// refuseIdentityReads has Identity refuse the company's token twice: the
// read renews once and gives up.
func (p *partnerMount) refuseIdentityReads(name string, i int) {
	p.e.sim.InjectFault(concurtest.EndpointUsers, 2, concurtest.Fault{Kind: concurtest.FaultStatus, Status: http.StatusUnauthorized})
	user := p.e.sim.Users(companyUUID(i + 1))[0].ID
	if _, err := p.do(logical.ReadOperation, "companies/"+name+"/profile/"+user, nil); err == nil {
		p.e.t.Fatalf("a profile read Identity refused succeeded")
	}
}

// runMonth runs the periodic pass every hour for 31 days; the kept-ready
// company is never found expired after a pass.
func (p *partnerMount) runMonth() {
	for hour := range 31 * 24 {
		p.e.clock.Advance(time.Hour)
		_ = p.b.periodicFunc(context.Background(), &logical.Request{Storage: p.e.storage})
		if left := p.b.remaining(p.b.view(keptReady).entry); left < p.b.app.margin() {
			p.e.t.Fatalf("hour %d: the kept-ready company has %s left after a pass", hour, left)
		}
	}
}

// checkRenewedOnSchedule: every company that is not broken got its
// keep-alive within the hour after it was due, holds Concur's newest
// refresh token, and is served.
func (p *partnerMount) checkRenewedOnSchedule() {
	t := p.e.t
	for i := range partnerCompanies {
		name := partnerName(i)
		if name == undecodable || name == keptReady {
			continue
		}
		st, _ := storedCompany(p.e.storage, name)
		due := p.start.Add(keepAliveInterval(name))
		if got := st.Token.RefreshRenewedAt; got.Before(due) || got.After(due.Add(time.Hour)) {
			t.Errorf("%s: keep-alive at %s, due %s", name, got, due)
		}
		if st.Token.RefreshToken != p.e.sim.CurrentRefreshToken(testClientID, companyUUID(i+1)) {
			t.Errorf("%s does not hold Concur's newest refresh token", name)
		}
		if _, err := p.do(logical.ReadOperation, "companies/"+name+"/creds", nil); err != nil {
			t.Errorf("%s creds: %v", name, err)
		}
	}
}

// repairBrokenOnes: the operator deletes the undecodable company and
// re-bootstraps the others.
func (p *partnerMount) repairBrokenOnes() {
	t := p.e.t
	if _, err := p.do(logical.DeleteOperation, "companies/"+undecodable, nil); err != nil {
		t.Errorf("delete of the undecodable company: %v", err)
	}
	for _, i := range []int{2, 3} {
		uuid := companyUUID(i + 1)
		if _, err := p.do(logical.UpdateOperation, "companies/"+partnerName(i), map[string]any{
			"company_uuid": uuid, "request_token": p.e.sim.NewRequestToken(testClientID, uuid)}); err != nil {
			t.Errorf("re-bootstrap of %s: %v", partnerName(i), err)
		}
		if _, err := p.do(logical.ReadOperation, "companies/"+partnerName(i)+"/creds", nil); err != nil {
			t.Errorf("%s creds after its re-bootstrap: %v", partnerName(i), err)
		}
	}
}

// 2,000 companies on one mount, one with an undecodable entry, one refused
// by Identity, one with a marker from a clock an hour ahead, and 500
// failed onboarding writes: every other company is renewed on schedule
// and served, memory and metric series follow the stored companies, and
// the operator can delete or re-bootstrap each broken one.
func TestPartnerMountWithBrokenCompanies(t *testing.T) {
	p := newPartnerMount(t)
	p.failOnboarding(500)
	p.refuseIdentityReads(identityRefused, 2)
	p.runMonth()
	p.checkRenewedOnSchedule()
	if _, err := p.do(logical.ReadOperation, "metrics", nil); err != nil {
		t.Errorf("metrics: %v", err)
	}
	resp, err := p.do(logical.ListOperation, "companies/", nil)
	if err != nil || len(resp.Data["keys"].([]string)) != partnerCompanies {
		t.Errorf("list: %v, want all %d companies (the undecodable one included)", err, partnerCompanies)
	}
	p.e.assertMemoryFollowsStorage(p.b)
	p.repairBrokenOnes()
	p.e.assertMemoryFollowsStorage(p.b)
}
