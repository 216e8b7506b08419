package backend

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Tests of refresh-token custody (issue 10): grants outlive their callers,
// a backend instance waits for its grant before it goes, and a new instance
// never presents a token an old one may still be rotating.

// tokenCallSignal tells the test when a token request has left the engine.
type tokenCallSignal struct {
	base http.RoundTripper
	sent chan struct{}
}

func (s *tokenCallSignal) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/oauth2/v0/token" {
		select {
		case s.sent <- struct{}{}:
		default:
		}
	}
	return s.base.RoundTrip(r)
}

// signalTokenCalls makes the engine's HTTP client report token requests on
// the returned channel. Call it before bootstrap: clients are built then.
func (e *testEnv) signalTokenCalls() <-chan struct{} {
	sig := &tokenCallSignal{base: e.sim.Client().Transport, sent: make(chan struct{}, 16)}
	e.b.httpClient = &http.Client{Transport: sig}
	return sig.sent
}

// drain empties ch.
func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// holdTokenAnswers makes the simulator keep the next n token requests for d
// (real time) before answering them.
func (e *testEnv) holdTokenAnswers(n int, d time.Duration) {
	e.sim.InjectFault(concurtest.EndpointToken, n, concurtest.Fault{Kind: concurtest.FaultDelay, Delay: d})
}

// requestGivingUp sends a request whose caller gives up as soon as the
// engine has sent its token request.
func (e *testEnv) requestGivingUp(sent <-chan struct{}, op logical.Operation, path string, data map[string]any) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-sent
		cancel()
	}()
	_, err := e.b.HandleRequest(ctx, &logical.Request{Operation: op, Path: path, Data: data, Storage: e.storage})
	return err
}

// assertCustody: storage holds Concur's current refresh token and Concur
// never saw a dead one.
func (e *testEnv) assertCustody() {
	e.t.Helper()
	if got := e.storedToken().RefreshToken; got == "" || got != e.currentRefreshToken() {
		e.t.Errorf("storage does not hold Concur's current refresh token")
	}
	if n := e.sim.ErrorCount(108); n != 0 {
		e.t.Errorf("Concur answered invalid_grant (108) %d times: a dead refresh token was presented", n)
	}
}

// A rotate whose caller gives up while Concur holds the answer still ends
// with the new refresh token stored (fails on main: rotate used the
// request's context, so the grant died with the caller).
func TestRotateOutlivesItsCaller(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	sent := e.signalTokenCalls()
	e.bootstrap()
	drain(sent)
	before := e.storedToken().RefreshToken
	e.holdTokenAnswers(1, 300*time.Millisecond)

	err := e.requestGivingUp(sent, logical.UpdateOperation, "rotate", nil)
	if err == nil || !strings.Contains(err.Error(), context.Canceled.Error()) {
		t.Fatalf("rotate from a caller that gave up: %v, want context.Canceled", err)
	}
	e.b.idle()
	if e.storedToken().RefreshToken == before {
		t.Errorf("the grant did not complete after its caller left")
	}
	e.assertCustody()
	if c := e.creds(); c["access_token"] != e.storedToken().AccessToken {
		t.Errorf("creds does not serve the stored token")
	}
}

// Bootstrap by request token and by refresh token: a caller that gives up
// does not cancel the grant; its result is stored (fails on main).
func TestConfigBootstrapOutlivesItsCaller(t *testing.T) {
	for _, field := range []string{"request_token", "refresh_token"} {
		t.Run(field, func(t *testing.T) {
			e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
			sent := e.signalTokenCalls()
			seed := e.sim.NewRefreshToken(testClientID, testCompany)
			data := e.baseConfig()
			if field == "request_token" {
				data[field] = e.sim.NewRequestToken(testClientID, testCompany)
			} else {
				data[field] = seed
			}
			e.holdTokenAnswers(1, 300*time.Millisecond)
			if err := e.requestGivingUp(sent, logical.CreateOperation, "config", data); err == nil ||
				!strings.Contains(err.Error(), context.Canceled.Error()) {
				t.Fatalf("config write from a caller that gave up: %v, want context.Canceled", err)
			}
			e.b.idle()
			e.assertCustody()
			if field == "refresh_token" && e.sim.RefreshTokenValid(seed) {
				t.Errorf("the seed refresh token should have been rotated by the grant")
			}
			if resp := e.mustOK(logical.ReadOperation, "config", nil); resp == nil || resp.Data["status"] != statusOK {
				t.Errorf("config after the bootstrap: %v, want status ok", resp)
			}
		})
	}
}

// Clean (step-down, seal, unmount, plugin reload) waits for the grant in
// flight and its write (fails on main: Clean returned at once and the
// result was written, if at all, after the instance was gone), then makes
// no more Concur calls.
func TestCleanWaitsForGrantInFlight(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	sent := e.signalTokenCalls()
	e.bootstrap()
	drain(sent)
	before := e.storedToken().RefreshToken
	e.holdTokenAnswers(1, 300*time.Millisecond)

	done := make(chan error, 1)
	go func() { _, err := e.request(logical.UpdateOperation, "rotate", nil); done <- err }()
	<-sent
	e.b.Cleanup(context.Background())
	if got := e.storedToken().RefreshToken; got == before {
		t.Errorf("Clean returned before the grant in flight stored its result")
	}
	e.assertCustody()
	if err := <-done; err != nil {
		t.Errorf("rotate in flight at Clean: %v", err)
	}

	calls := e.sim.Calls(concurtest.EndpointToken)
	_, err := e.request(logical.UpdateOperation, "rotate", nil)
	if codeOf(err) != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("rotate after Clean: %v, want 503 saying the engine is shutting down", err)
	}
	if e.sim.Calls(concurtest.EndpointToken) != calls {
		t.Errorf("Concur was called after Clean")
	}
}

// Clean's wait is bounded; the grant still stores its result when it ends.
func TestCleanWaitIsBounded(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.b.cleanWait = 50 * time.Millisecond
	sent := e.signalTokenCalls()
	e.bootstrap()
	drain(sent)
	e.holdTokenAnswers(1, time.Second)
	go func() { _, _ = e.request(logical.UpdateOperation, "rotate", nil) }()
	<-sent
	e.b.Cleanup(context.Background())
	if !strings.Contains(e.logs.String(), "still in flight at shutdown") {
		t.Errorf("Clean did not say it left a grant in flight")
	}
	e.b.idle()
	e.assertCustody()
}

// Clean writes tokens that storage refused earlier, while it answers again
// (fails on main: Clean kept them in memory only, and the instance went).
func TestCleanWritesUnsavedTokens(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	e.storage.failAfterMarker(1)
	if _, err := e.request(logical.UpdateOperation, "rotate", nil); err == nil {
		t.Fatal("rotate with failing storage succeeded")
	}
	if e.storedToken().RefreshToken == e.currentRefreshToken() {
		t.Fatal("test setup: storage should still hold the older token")
	}
	e.b.Cleanup(context.Background())
	e.assertCustody()
}

// A second instance on the same storage (after a plugin reload or a leader
// change) stands in for a new one while the old one still rotates.
func (e *testEnv) newInstance() *backend {
	e.t.Helper()
	b := newBackend(options{now: e.b.now, httpClient: e.b.httpClient, retry: e.b.retry})
	conf := &logical.BackendConfig{
		Logger:      hclog.New(&hclog.LoggerOptions{Output: e.logs, Level: hclog.Trace, JSONFormat: true}),
		System:      e.sys,
		StorageView: e.storage,
	}
	if err := b.Setup(context.Background(), conf); err != nil {
		e.t.Fatal(err)
	}
	return b
}

func requestOn(b *backend, s logical.Storage, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	return b.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: path, Data: data, Storage: s})
}

// While the old instance's grant is in flight (its marker live), the new
// instance serves the still-valid token and does not present the refresh
// token (fails on main: the new instance refreshed with the same token and,
// under strict rotation, one of the two grants met a dead token).
func TestNewInstanceWaitsForOldInstancesGrant(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	sent := e.signalTokenCalls()
	e.bootstrap()
	drain(sent)
	newer := e.newInstance()
	e.clock.Advance(10 * time.Minute)
	e.holdTokenAnswers(1, 300*time.Millisecond)

	done := make(chan error, 1)
	go func() { _, err := e.request(logical.UpdateOperation, "rotate", nil); done <- err }()
	<-sent
	resp, err := requestOn(newer, e.storage, logical.ReadOperation, "creds", map[string]any{"min_ttl": "55m"})
	if err != nil || resp.IsError() {
		t.Fatalf("creds on the new instance while the old one rotates: %v %v", err, resp.Error())
	}
	if len(resp.Warnings) == 0 || !strings.Contains(resp.Warnings[0], "in flight") {
		t.Errorf("warnings %q, want one saying a token call is in flight elsewhere", resp.Warnings)
	}
	select {
	case <-sent:
		t.Errorf("the new instance called Concur while the old one's grant was in flight")
	default:
	}
	if err := <-done; err != nil {
		t.Fatalf("the old instance's rotate: %v", err)
	}

	// Once the old grant is stored, the new instance renews from its result.
	if _, err := requestOn(newer, e.storage, logical.UpdateOperation, "rotate", nil); err != nil {
		t.Fatalf("rotate on the new instance afterwards: %v", err)
	}
	e.assertCustody()
}

// plantMarker stores a marker as an old instance would have left it.
func (e *testEnv) plantMarker(until time.Time) {
	e.t.Helper()
	var st companyEntry
	if _, err := getJSON(context.Background(), e.storage, defaultCompanyKey, &st); err != nil {
		e.t.Fatal(err)
	}
	st.Token.Grant = &grantMarker{RefreshToken: tokenFingerprint(st.Token.RefreshToken), Until: until, Instance: "old-instance"}
	if err := putJSON(context.Background(), e.storage, defaultCompanyKey, &st); err != nil {
		e.t.Fatal(err)
	}
}

// A live marker is waited out; once it expires with the token still the
// stored one, the engine goes ahead (with a warning in the log).
func TestExpiredMarkerProceedsWithWarning(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	e.plantMarker(e.clock.Now().Add(time.Minute))
	newer := e.newInstance()
	calls := e.sim.Calls(concurtest.EndpointToken)
	_, err := requestOn(newer, e.storage, logical.UpdateOperation, "rotate", nil)
	if codeOf(err) != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "in flight") {
		t.Errorf("rotate under a live marker: %v, want 503 naming the call in flight", err)
	}
	if e.sim.Calls(concurtest.EndpointToken) != calls {
		t.Errorf("Concur was called under another instance's live marker")
	}

	e.clock.Advance(2 * time.Minute)
	if _, err := requestOn(newer, e.storage, logical.UpdateOperation, "rotate", nil); err != nil {
		t.Fatalf("rotate after the marker expired: %v", err)
	}
	if !strings.Contains(e.logs.String(), "ended without a stored outcome") {
		t.Errorf("no warning about the expired marker in the log")
	}
	if e.storedToken().Grant != nil {
		t.Errorf("the write storing the result did not clear the marker")
	}
	e.assertCustody()
}

// The other outcome of an expired marker: the old instance's grant did
// reach Concur under strict rotation and its answer was lost. Concur then
// refuses the stored token with its code, and only then does the engine
// report needs_bootstrap.
func TestExpiredMarkerAfterLostAnswerIsConcursRefusal(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	// The old instance's grant: processed by Concur, answer never stored.
	client, err := concur.New(concur.Options{HTTPClient: e.sim.Client(), AllowedHosts: []string{"http://127.0.0.1:*"}, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	creds := concur.Credentials{ClientID: testClientID, ClientSecret: concur.NewSecret(testClientSecret)}
	if _, err := client.Refresh(context.Background(), e.sim.URL, creds, concur.NewSecret(e.storedToken().RefreshToken)); err != nil {
		t.Fatal(err)
	}
	e.plantMarker(e.clock.Now().Add(-time.Second))
	newer := e.newInstance()
	_, err = requestOn(newer, e.storage, logical.UpdateOperation, "rotate", nil)
	if !strings.Contains(errText(err), "108") {
		t.Errorf("rotate with a token Concur rotated away: %v, want Concur's code 108", err)
	}
	resp, _ := requestOn(newer, e.storage, logical.ReadOperation, "config", nil)
	if s := resp.Data["status"]; s != statusNeedsBootstrap {
		t.Errorf("status %v, want needs_bootstrap after Concur's coded refusal", s)
	}
}

// A marker for another token (an older one, already replaced) is no reason
// to wait.
func TestMarkerForAnotherTokenIsIgnored(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	e.bootstrap()
	var st companyEntry
	_, _ = getJSON(context.Background(), e.storage, defaultCompanyKey, &st)
	st.Token.Grant = &grantMarker{RefreshToken: tokenFingerprint("an older token"), Until: e.clock.Now().Add(time.Hour), Instance: "old"}
	_ = putJSON(context.Background(), e.storage, defaultCompanyKey, &st)
	if _, err := requestOn(e.newInstance(), e.storage, logical.UpdateOperation, "rotate", nil); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	e.assertCustody()
}
