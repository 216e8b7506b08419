package backend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathConfigHelpSynopsis = "Configure the Concur app credentials and company token, and see the engine's state."

const pathConfigHelpDescription = `
Write the app's credentials and, for the mount's default company (the one
of the root paths creds, rotate and profile), the company UUID and either a
company request token (request_token, valid 24 hours, from Concur's Company Request Token
tool) or an existing company refresh token (refresh_token, with the
geolocation Concur named with it when known). The engine calls
Concur at once and only reports success, and stores anything, once Concur has
issued a working token. Request tokens are exchanged and never stored.

Writes are partial: fields left out keep their values. Changing client_id or
company_uuid needs a new request_token or refresh_token; changing only
client_secret (a secret rotation) keeps the stored token.

Reads never return a secret. They show the settings and the engine's state:
status is "ok", "degraded" (the last renewal failed transiently; the engine
retries with backoff and keeps serving the still-valid token) or
"needs_bootstrap" (Concur refused the refresh token for good; write config
with a new request_token or refresh_token).

Read fields: client_id, company_uuid, base_url, allowed_hosts,
refresh_margin (seconds), metrics_detail, client_secret_set, refresh_token_set, geolocation,
scope, access_token_expires_at, refresh_token_expires_at, last_refresh_at,
last_error (with Concur's status, code and correlation id), last_error_at,
status, warnings (fields of Concur's last token answer that were unusable).

Without company_uuid the write stores the app alone: integrators that serve
many companies then add each with companies/<name>, and a client_secret
change here applies to every company's next grant.

Delete removes settings and the default company's tokens (refused while
named companies exist: delete them first). With revoke=true the engine first asks
Concur to revoke the connection (DELETE /app-mgmt/v0/connections), and keeps
everything if that fails.
`

func pathConfig(b *backend) *framework.Path {
	fields := appFields()
	for k, v := range companyFields() {
		fields[k] = v
	}
	return &framework.Path{
		Pattern:        "config",
		DisplayAttrs:   &framework.DisplayAttributes{OperationPrefix: "concur"},
		Fields:         fields,
		ExistenceCheck: b.pathConfigExists,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.CreateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				Summary:                     "Configure the engine and bootstrap its default company's token.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				Summary:                     "Change settings or replace the default company's token.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathConfigRead,
				Summary:  "Read the settings and the default company's state (never a secret).",
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                    b.pathConfigDelete,
				Summary:                     "Remove settings and tokens; revoke=true also revokes the connection at Concur.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
		},
		HelpSynopsis:    pathConfigHelpSynopsis,
		HelpDescription: strings.TrimSpace(pathConfigHelpDescription),
	}
}

func (b *backend) pathConfigExists(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	app, err := b.app.load(ctx, req.Storage)
	if err != nil {
		return false, err
	}
	return app.entry != nil, nil
}

func (b *backend) pathConfigRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	app, err := b.app.load(ctx, req.Storage)
	if err != nil || app.entry == nil {
		return nil, err
	}
	co, err := b.companies.lookup(ctx, req.Storage, defaultCompanyName)
	if err != nil {
		return nil, err
	}
	var v companyView
	if co != nil {
		v = co.current()
	}
	resp := &logical.Response{Data: configResponseData(app.entry, v)}
	if v.entry != nil && v.entry.Token.AnswerWarning != "" {
		resp.AddWarning(v.entry.Token.AnswerWarning)
	}
	for _, w := range b.deprecations.warnings() {
		resp.AddWarning(w)
	}
	return resp, nil
}

// configResponseData is what config read shows: the app's settings and the
// default company's state, no secret.
func configResponseData(a *appEntry, v companyView) map[string]any {
	data := companyResponseData(v)
	data["client_id"] = a.ClientID
	data["base_url"] = a.BaseURL
	data["allowed_hosts"] = a.AllowedHosts
	data["refresh_margin"] = int64(a.RefreshMargin / time.Second)
	data["client_secret_set"] = a.ClientSecret != ""
	data["metrics_detail"] = cmp.Or(a.MetricsDetail, metricsDetailAttention)
	return data
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// pathConfigWrite stores the app's settings and, when company fields are
// given, configures the default company with them: settings and tokens are
// stored once Concur issued a working token, or nothing is.
func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d, "revoke"); resp != nil {
		return resp, nil
	}
	// Vault forwards writes from performance standbys and secondaries (see
	// the Forward flags); this also covers any other node that may not write.
	if !b.writeSafe() {
		return nil, logical.ErrReadOnly
	}
	app, resp, err := b.appChange(ctx, req.Storage, d)
	if resp != nil || err != nil {
		return resp, err
	}
	co, release := b.companies.acquire(defaultCompanyName)
	defer release()
	prev, err := co.load(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if !hasCompanyFields(d) {
		if resp, err := b.checkGeolocationsAllowed(ctx, req.Storage, app, ""); resp != nil || err != nil {
			return resp, err
		}
		// After Clean the next instance owns storage (and on CE never hears of this write).
		if err := b.gate.do(func() error { return b.app.save(ctx, req.Storage, app) }); err != nil {
			return nil, err
		}
		return b.configWritten(ctx, app, co, false)
	}
	change, resp := companyChangeFrom(d, app, prev.entry, defaultCompanyName)
	if resp != nil {
		return resp, nil
	}
	change.setsApp = true
	skip := ""
	if change.bootstraps() {
		skip = defaultCompanyName // its geolocation comes with the new token
	}
	if resp, err := b.checkGeolocationsAllowed(ctx, req.Storage, app, skip); resp != nil || err != nil {
		return resp, err
	}
	if _, err := co.configure(ctx, req.Storage, change); err != nil {
		return companyWriteError(change, err)
	}
	return b.configWritten(ctx, app, co, change.bootstraps())
}

// appChange is the app after a config write's app fields: validated, with
// its client built, and the rules that span companies checked.
func (b *backend) appChange(ctx context.Context, s logical.Storage, d *framework.FieldData) (appView, *logical.Response, error) {
	prev, err := b.app.load(ctx, s)
	if err != nil {
		return appView{}, nil, err
	}
	entry := newAppEntry()
	if prev.entry != nil {
		entry = *prev.entry
	}
	if resp := entry.update(d); resp != nil {
		return appView{}, resp, nil
	}
	app, resp := b.newAppView(&entry)
	if resp != nil {
		return appView{}, resp, nil
	}
	if prev.entry != nil && entry.ClientID != prev.entry.ClientID {
		names, err := b.companyNames(ctx, s)
		if err != nil {
			return appView{}, nil, err
		}
		if others := slices.DeleteFunc(names, func(n string) bool { return n == defaultCompanyName }); len(others) > 0 {
			return appView{}, logical.ErrorResponse("client_id: %d companies hold tokens of the current app (delete them "+
				"first, or use another mount for the other app)", len(others)), nil
		}
		if !hasBootstrapFields(d) {
			return appView{}, logical.ErrorResponse("client_id: changing it needs a new request_token or refresh_token " +
				"for that app and company"), nil
		}
	}
	return app, nil, nil
}

// configWritten reports a config write: log, event and response.
func (b *backend) configWritten(ctx context.Context, app appView, co *company, bootstrapped bool) (*logical.Response, error) {
	v := co.current()
	geo := ""
	if v.entry != nil {
		geo = v.entry.Token.Geolocation
	}
	b.Logger().Info("configuration written", "bootstrapped", bootstrapped, "geolocation", geo)
	b.sendEvent(ctx, companyWriteEvent(co.name, "config", v.entry))
	resp := &logical.Response{Data: configResponseData(app.entry, v)}
	if v.entry != nil {
		for _, w := range tokenWarnings(v.entry.Token) {
			resp.AddWarning(w)
		}
	}
	return resp, nil
}

// checkPrintable refuses values that cannot be credentials or ids.
func checkPrintable(v string) error {
	if v == "" {
		return errors.New("is empty")
	}
	if len(v) > maxFieldLength {
		return fmt.Errorf("is longer than %d characters", maxFieldLength)
	}
	for _, r := range v {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return errors.New("contains whitespace or control characters")
		}
	}
	return nil
}

func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	if !b.writeSafe() {
		return nil, logical.ErrReadOnly
	}
	names, err := b.companyNames(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if others := slices.DeleteFunc(names, func(n string) bool { return n == defaultCompanyName }); len(others) > 0 {
		return logical.ErrorResponse("config: %d named companies use the app's settings; delete companies/<name> first", len(others)), nil
	}
	co, release := b.companies.acquire(defaultCompanyName)
	defer release()
	if err := b.deleteCompany(ctx, req.Storage, co, d.Get("revoke").(bool)); err != nil {
		return nil, err
	}
	if err := b.gate.do(func() error { return b.app.remove(ctx, req.Storage) }); err != nil {
		return nil, err
	}
	b.sendEvent(ctx, configDeleteEvent())
	return nil, nil
}
