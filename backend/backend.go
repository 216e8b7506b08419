package backend

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

const backendHelp = `
The Concur secrets engine keeps an SAP Concur company refresh token in Vault,
renews it before anything expires, and hands out the company's cached,
multiple-use bearer token.

Configure it once with "config" (app credentials, company UUID and a company
request token or refresh token). Apps read "creds" for a bearer token, or read
"profile/<user-uuid>" to have the engine call Identity v4 for them.

Integrators serving many Concur companies with one app add each company with
"companies/<name>"; its paths are companies/<name>/creds, /rotate and
/profile..., renewed and kept alive like the default company's.
`

// options are the parts of the backend that tests replace.
type options struct {
	now        func() time.Time
	httpClient *http.Client
	retry      concur.RetryPolicy
}

// backend is one mount of the engine. Everything per mount lives here: the
// plugin is multiplexed, so one process may serve many mounts.
type backend struct {
	*framework.Backend

	now        func() time.Time
	httpClient *http.Client
	retry      concur.RetryPolicy
	// system is Vault's system view as given, uncached (see writeSafe).
	system logical.SystemView
	// storage is the mount's storage view, for writes at shutdown (Clean).
	storage logical.Storage

	// The mount's state, one owner per job (see doc.go): the app's
	// settings, the gate on Concur token calls, the companies.
	app       *appCache
	gate      *grantGate
	companies *registry
	// instance names this backend instance in its write-ahead markers.
	instance string
	// cleanWait bounds how long Clean waits for grants in flight.
	cleanWait time.Duration
	// metrics are this mount's Prometheus series (path metrics).
	metrics *metrics
	// deprecations are the deprecation notices Concur sent this mount.
	deprecations *deprecations
}

// Factory is the logical.Factory Vault calls for every mount, unseal and
// leadership change.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend(options{})
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

func newBackend(o options) *backend {
	if o.now == nil {
		o.now = time.Now
	}
	if o.httpClient == nil {
		o.httpClient = cleanhttp.DefaultPooledClient()
	}
	if o.retry == (concur.RetryPolicy{}) {
		// Reads wait on this, and Vault gives a request 90 s: keep well inside it.
		o.retry = concur.RetryPolicy{MaxAttempts: 3, MinBackoff: 500 * time.Millisecond, MaxBackoff: 5 * time.Second,
			MaxElapsed: 30 * time.Second}
	}
	b := &backend{now: o.now, retry: o.retry, metrics: newMetrics()}
	b.httpClient = b.metrics.instrument(o.httpClient)
	b.wireState()
	b.deprecations = newDeprecations(b.now, func() hclog.Logger { return b.Logger() })
	b.Backend = &framework.Backend{
		Help:           strings.TrimSpace(backendHelp),
		BackendType:    logical.TypeLogical,
		RunningVersion: Version,
		PathsSpecial: &logical.Paths{
			SealWrapStorage: []string{appStorageKey, companyStoragePrefix, legacyStorageKey},
		},
		// The framework routes a request by trying each path's regexp in
		// this order, so the hot paths come first: behind the others, the
		// routing of a companies/<name>/creds read cost 2 µs more
		// (docs/performance.md). No two patterns match the same path.
		Paths: framework.PathAppend(
			b.timed("creds", b.warnDeprecated(tokenAPI, pathCreds(b))...),
			b.timed("creds", b.warnDeprecated(tokenAPI, companyScoped(pathCreds(b))...)...),
			[]*framework.Path{pathConfig(b), pathMetrics(b)},
			pathCompanies(b),
			b.warnDeprecated(tokenAPI, pathRotate(b)),
			b.warnDeprecated(tokenAPI, companyScoped(pathRotate(b))...),
			b.timed("profile", b.warnDeprecated(identityAPI, pathProfile(b)...)...),
			b.timed("profile", b.warnDeprecated(identityAPI, companyScoped(pathProfile(b)...)...)...),
		),
		PeriodicFunc: b.periodicFunc,
		Invalidate:   b.invalidate,
		Clean:        b.clean,
	}
	return b
}

// periodicFunc runs about once a minute on the active node (Vault's rollback
// manager). It keeps an access token ready, which also slides the refresh
// token's expiry forward.
func (b *backend) periodicFunc(ctx context.Context, req *logical.Request) error {
	// Only the node that may write storage talks to Concur: a refresh can
	// rotate the refresh token, and a copy that cannot be stored is lost.
	if !b.writeSafe() {
		return nil
	}
	return b.renewDue(ctx, req.Storage)
}

// invalidate runs on Enterprise standbys and secondaries when replicated
// storage changes under us: drop what we cached and reload lazily.
func (b *backend) invalidate(_ context.Context, key string) {
	switch {
	case key == appStorageKey:
		b.app.forget()
	case key == legacyStorageKey:
		b.app.forget()
		b.companies.forget(defaultCompanyName)
	case strings.HasPrefix(key, companyStoragePrefix):
		if name := strings.TrimPrefix(key, companyStoragePrefix); validCompanyName(name) {
			b.companies.forget(name)
		}
	}
}

// companyScoped are copies of the root paths (creds, rotate, profile) for
// each named company: companies/<name>/creds and so on.
func companyScoped(paths ...*framework.Path) []*framework.Path {
	out := make([]*framework.Path, 0, len(paths))
	for _, p := range paths {
		c := *p
		c.Pattern = "companies/" + framework.GenericNameRegex("name") + "/" + p.Pattern
		c.Fields = map[string]*framework.FieldSchema{"name": nameField}
		for k, v := range p.Fields {
			c.Fields[k] = v
		}
		c.Operations = make(map[logical.Operation]framework.OperationHandler, len(p.Operations))
		for op, h := range p.Operations {
			c.Operations[op] = h
		}
		if p.DisplayAttrs != nil {
			attrs := *p.DisplayAttrs
			attrs.OperationPrefix = "concur-company"
			c.DisplayAttrs = &attrs
		}
		out = append(out, &c)
	}
	return out
}

// clean runs on unmount, seal, step-down and plugin reload: this instance
// stops calling Concur, after the call in flight (if any) has stored its
// result and unsaved tokens are written, waiting at most cleanWait.
// Once it returns, nothing calls Concur or writes storage for a company:
// the next instance owns them.
func (b *backend) clean(ctx context.Context) {
	b.gate.shut()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cleanWait)
	defer cancel()
	var wg sync.WaitGroup
	for _, co := range b.companies.loaded() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			co.close(wctx, b.storage)
		}()
	}
	wg.Wait()
	if b.storage != nil {
		if err := b.gate.do(func() error { return b.app.flush(wctx, b.storage) }); err != nil {
			b.Logger().Error("writing the app's settings at shutdown failed", "error", err)
		}
	}
	b.gate.cutOff()
	b.app.forget()
	b.httpClient.CloseIdleConnections()
}
