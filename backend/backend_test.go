package backend

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

const (
	testClientID     = "0f5e3f3a-7a2b-4a54-9c0d-5d4a1c2b3e4f"
	testClientSecret = "s3cr3t-client-9d8c7b6a"
	testCompany      = "aa076ada-80a9-4f57-8e98-9300b1c3171d"
)

var testEpoch = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// testEnv is one mount of the engine wired to an in-process Concur
// simulator, sharing one controllable clock.
type testEnv struct {
	t       testing.TB
	sim     *concurtest.Server
	clock   *concurtest.Clock
	b       *backend
	storage *faultyStorage
	sys     *logical.StaticSystemView
	logs    *syncBuffer
}

func newTestEnv(t testing.TB, simOpts concurtest.Options) *testEnv {
	t.Helper()
	clock := concurtest.NewClock(testEpoch)
	simOpts.Clock = clock
	sim := concurtest.NewServer(simOpts)
	t.Cleanup(sim.Close)
	sim.AddClient(testClientID, testClientSecret)
	sim.AddCompany(testCompany, "")

	logs := &syncBuffer{}
	sys := logical.TestSystemView()
	storage := &faultyStorage{Storage: &logical.InmemStorage{}}
	b := newBackend(options{
		now:        clock.Now,
		httpClient: sim.Client(),
		retry: concur.RetryPolicy{
			MaxAttempts: 2,
			MinBackoff:  time.Millisecond,
			MaxBackoff:  5 * time.Millisecond,
			MaxElapsed:  5 * time.Second,
		},
	})
	conf := &logical.BackendConfig{
		Logger:      hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace, JSONFormat: true}),
		System:      sys,
		StorageView: storage,
	}
	if err := b.Setup(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	env := &testEnv{t: t, sim: sim, clock: clock, b: b, storage: storage, sys: sys, logs: logs}
	t.Cleanup(env.assertNoSecretsLogged)
	return env
}

// request sends one request through the backend's own routing, as Vault would.
func (e *testEnv) request(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	return e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: op, Path: path, Data: data, Storage: e.storage,
	})
}

func (e *testEnv) mustOK(op logical.Operation, path string, data map[string]any) *logical.Response {
	e.t.Helper()
	resp, err := e.request(op, path, data)
	if err != nil {
		e.t.Fatalf("%s %s: %v", op, path, err)
	}
	if resp != nil && resp.IsError() {
		e.t.Fatalf("%s %s: %v", op, path, resp.Error())
	}
	return resp
}

// baseConfig is a config write for the simulator, without a token.
func (e *testEnv) baseConfig() map[string]any {
	return map[string]any{
		"client_id":     testClientID,
		"client_secret": testClientSecret,
		"company_uuid":  testCompany,
		"base_url":      e.sim.URL,
		"allowed_hosts": "http://127.0.0.1:*,https://127.0.0.1:*",
	}
}

// bootstrap configures the engine with a fresh company request token.
func (e *testEnv) bootstrap() *logical.Response {
	e.t.Helper()
	data := e.baseConfig()
	data["request_token"] = e.sim.NewRequestToken(testClientID, testCompany)
	return e.mustOK(logical.CreateOperation, "config", data)
}

func (e *testEnv) creds() map[string]any {
	e.t.Helper()
	return e.mustOK(logical.ReadOperation, "creds", nil).Data
}

// periodic runs what Vault's rollback manager runs each minute.
func (e *testEnv) periodic() error {
	_, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RollbackOperation, Storage: e.storage})
	return err
}

// secrets are every credential value the test has seen.
func (e *testEnv) secrets() []string {
	out := []string{testClientSecret}
	if st := e.b.defaultEntry(); st != nil {
		out = append(out, st.Token.AccessToken, st.Token.RefreshToken)
	}
	if rt := e.sim.CurrentRefreshToken(testClientID, testCompany); rt != "" {
		out = append(out, rt)
	}
	return out
}

func (e *testEnv) assertNoSecretsLogged() {
	logs := e.logs.String()
	for _, s := range e.secrets() {
		if s != "" && strings.Contains(logs, s) {
			e.t.Errorf("a secret appears in the logs")
		}
	}
}

// faultyStorage can fail writes, or answer like a read-only standby.
type faultyStorage struct {
	logical.Storage
	mu       sync.Mutex
	passPuts int  // let the next n puts through before failPuts apply
	failPuts int  // fail the next n puts
	readOnly bool // every put and delete answers with Vault's read-only error, as text (as across gRPC)
	puts     int
}

func (s *faultyStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	s.mu.Lock()
	s.puts++
	switch {
	case s.readOnly:
		s.mu.Unlock()
		return errors.New(logical.ErrReadOnly.Error())
	case s.passPuts > 0:
		s.passPuts--
	case s.failPuts > 0:
		s.failPuts--
		s.mu.Unlock()
		return errors.New("storage unavailable")
	}
	s.mu.Unlock()
	return s.Storage.Put(ctx, e)
}

func (s *faultyStorage) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	ro := s.readOnly
	s.mu.Unlock()
	if ro {
		return errors.New(logical.ErrReadOnly.Error())
	}
	return s.Storage.Delete(ctx, key)
}

func (s *faultyStorage) set(failPuts int, readOnly bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passPuts, s.failPuts, s.readOnly = 0, failPuts, readOnly
}

// failAfterMarker fails the n writes that follow the next one: the next
// grant's write-ahead marker is stored, the grant's result is not.
func (s *faultyStorage) failAfterMarker(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passPuts, s.failPuts, s.readOnly = 1, n, false
}

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// asStandby makes the backend see a replication state in which it may not write.
func (e *testEnv) asReplicationState(state consts.ReplicationState, localMount bool) {
	e.sys.ReplicationStateVal = state
	e.sys.LocalMountVal = localMount
}

func codeOf(err error) int {
	var coded logical.HTTPCodedError
	if errors.As(err, &coded) {
		return coded.Code()
	}
	return 0
}

func TestFactoryReportsVersionAndType(t *testing.T) {
	b, err := Factory(
		context.Background(),
		&logical.BackendConfig{Logger: hclog.NewNullLogger(), System: logical.TestSystemView(), StorageView: &logical.InmemStorage{}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if b.Type() != logical.TypeLogical {
		t.Errorf("type %v, want logical", b.Type())
	}
	if v := b.(*backend).PluginVersion().Version; v != Version {
		t.Errorf("running version %q, want %q", v, Version)
	}
	sp := b.SpecialPaths()
	if !slices.Equal(sp.SealWrapStorage, []string{appStorageKey, companyStoragePrefix, legacyStorageKey}) {
		t.Errorf("seal-wrapped paths %v, want the app, every company and the v0.1.0 entry", sp.SealWrapStorage)
	}
}

// putCount is how many writes storage was asked for.
func (s *faultyStorage) putCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts
}
