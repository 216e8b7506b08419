package backend

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// withEventSender sets the backend up again, as Vault would, with sender
// as its event sender.
func withEventSender(t *testing.T, e *testEnv, sender logical.EventSender) {
	t.Helper()
	conf := &logical.BackendConfig{Logger: e.b.Logger(), System: e.sys, StorageView: e.storage, EventsSender: sender}
	if err := e.b.Setup(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
}

type sentEvent struct {
	eventType string
	metadata  map[string]string
}

// takeEvents returns the events sent so far and forgets them.
func takeEvents(m *logical.MockEventSender) []sentEvent {
	m.Lock()
	defer m.Unlock()
	var out []sentEvent
	for _, ev := range m.Events {
		md := map[string]string{}
		for k, v := range ev.Event.GetMetadata().GetFields() {
			md[k] = v.GetStringValue()
		}
		out = append(out, sentEvent{eventType: string(ev.Type), metadata: md})
	}
	m.Events = nil
	return out
}

// wantEvent checks that got is exactly one event of the type, path and
// status, naming the default company and no secret.
func wantEvent(t *testing.T, e *testEnv, what string, got []sentEvent, eventType, path, status string) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("%s: %d events %v, want one %s", what, len(got), got, eventType)
	}
	ev := got[0]
	if ev.eventType != eventType {
		t.Errorf("%s: event %s, want %s", what, ev.eventType, eventType)
	}
	md := ev.metadata
	if md[logical.EventMetadataPath] != path || md[logical.EventMetadataDataPath] != path ||
		md["company"] != defaultCompanyName || md["status"] != status || md[logical.EventMetadataModified] != "true" {
		t.Errorf("%s: metadata %v, want path=data_path=%s company=%s status=%s modified=true", what, md, path, defaultCompanyName, status)
	}
	for _, v := range md {
		for _, s := range e.secrets() {
			if s != "" && strings.Contains(v, s) {
				t.Errorf("%s: a secret appears in the event metadata", what)
			}
		}
	}
}

func TestEventsOnConfigWriteRenewalAndDelete(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	sender := logical.NewMockEventSender()
	withEventSender(t, e, sender)

	e.bootstrap()
	wantEvent(t, e, "bootstrap", takeEvents(sender), eventConfigWrite, "config", statusOK)

	e.creds() // a fresh token: no renewal, no event
	if got := takeEvents(sender); len(got) != 0 {
		t.Errorf("a read of a fresh token sent events %v", got)
	}

	e.clock.Advance(55 * time.Minute)
	if err := e.periodic(); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, e, "periodic renewal", takeEvents(sender), eventRenew, "creds", statusOK)

	e.mustOK(logical.UpdateOperation, "rotate", nil)
	wantEvent(t, e, "rotate", takeEvents(sender), eventRenew, "creds", statusOK)

	e.mustOK(logical.UpdateOperation, "config", map[string]any{"refresh_margin": "5m"})
	wantEvent(t, e, "settings write", takeEvents(sender), eventConfigWrite, "config", statusOK)

	e.mustOK(logical.DeleteOperation, "config", nil)
	got := takeEvents(sender)
	wantEvent(t, e, "delete", got, eventConfigDelete, "config", statusNotConfigured)
	if got[0].metadata[logical.EventMetadataOperation] != "delete" {
		t.Errorf("delete event operation %q", got[0].metadata[logical.EventMetadataOperation])
	}
}

func TestEventsOnRenewalFailureAndNeedsBootstrap(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{})
	sender := logical.NewMockEventSender()
	withEventSender(t, e, sender)
	e.bootstrap()
	takeEvents(sender)

	e.clock.Advance(52 * time.Minute)
	e.sim.InjectFault(concurtest.EndpointToken, 100, concurtest.Fault{Kind: concurtest.FaultStatus, Status: 503})
	_ = e.periodic()
	wantEvent(t, e, "Concur 503", takeEvents(sender), eventRenewFail, "creds", statusDegraded)

	e.sim.ClearFaults()
	e.sim.RevokeConnection(testClientID, testCompany)
	e.clock.Advance(backoffMax)
	_ = e.periodic()
	wantEvent(t, e, "refresh token refused", takeEvents(sender), eventNeedsBootstrap, "creds", statusNeedsBootstrap)

	// Waiting for an operator: no more renewals, no more events.
	e.clock.Advance(time.Hour)
	_ = e.periodic()
	if got := takeEvents(sender); len(got) != 0 {
		t.Errorf("events while waiting for an operator: %v", got)
	}
}

type failingSender struct{ err error }

func (f failingSender) SendEvent(context.Context, logical.EventType, *logical.EventData) error {
	return f.err
}

func TestEventsAreBestEffort(t *testing.T) {
	// Without an event sender (framework.ErrNoEvents) nothing is logged.
	e := newTestEnv(t, concurtest.Options{})
	e.bootstrap()
	e.mustOK(logical.UpdateOperation, "rotate", nil)
	if strings.Contains(e.logs.String(), "sending a Vault event failed") {
		t.Errorf("a missing event sender was logged as a failure")
	}

	// A sender that fails is logged, and the operation still succeeds.
	e = newTestEnv(t, concurtest.Options{})
	withEventSender(t, e, failingSender{errors.New("event bus unavailable")})
	e.bootstrap()
	e.mustOK(logical.UpdateOperation, "rotate", nil)
	if n := strings.Count(e.logs.String(), "sending a Vault event failed"); n != 2 {
		t.Errorf("%d event failures logged, want 2 (config write, rotate)", n)
	}
	// Vault's "no event sender" arriving as text across gRPC is not a failure either.
	e = newTestEnv(t, concurtest.Options{})
	withEventSender(t, e, failingSender{errors.New("rpc error: no event sender configured")})
	e.bootstrap()
	if strings.Contains(e.logs.String(), "sending a Vault event failed") {
		t.Errorf("ErrNoEvents as text was logged as a failure")
	}
}

// A renewal whose access token is withheld (Concur named another company)
// is reported as a failed renewal, once its outcome is stored.
func TestWithheldRenewalIsReportedAsFailed(t *testing.T) {
	e := newTestEnv(t, concurtest.Options{Rotation: concurtest.RotationRotate})
	sender := logical.NewMockEventSender()
	withEventSender(t, e, sender)
	e.bootstrap()
	takeEvents(sender)
	e.sim.SetIDTokenSubject(testCompany, otherCompany)
	if _, err := e.request(logical.UpdateOperation, "rotate", nil); err == nil {
		t.Fatal("rotate with another company's token: no error")
	}
	wantEvent(t, e, "withheld renewal", takeEvents(sender), eventRenewFail, "creds", statusDegraded)
}
