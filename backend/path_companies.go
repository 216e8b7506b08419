package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

const pathCompaniesHelpSynopsis = "Connect a Concur company to the mount's app, and see its state."

const pathCompaniesHelpDescription = `
One connected company of the app configured on config: the company UUID and
either a company request token (request_token, 24 hours; the requestToken
App Center hands the partner's connect page) or an existing refresh token
(refresh_token, with its geolocation when known). The engine calls Concur at
once and stores the company only once Concur issued a working token; a
re-connect writes a new request token over the old company and replaces its
tokens. Without a token the company is stored as needs_bootstrap.

prewarm keeps an access token ready at all times (default: off; tokens are
obtained on first read and cached). Every company's refresh token is kept
alive by the engine well before Concur's idle limit either way.

The company's own paths: companies/<name>/creds, companies/<name>/rotate and
companies/<name>/profile..., as the root paths are the default company's
(also visible here as companies/default, which config alone writes and
deletes). Reads never return a secret; they show the same state as config
read. Delete takes revoke=true as config does. LIST companies/ lists them
with their state (vault list -detailed), by status and page (see "vault
path-help concur/companies").
`

// companyFields are the schema of a company's settings (config has them
// for the default company, companies/<name> for each).
func companyFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"company_uuid": {
			Type:         framework.TypeString,
			Description:  "The company's UUID, as shown by Concur's Company Request Token tool (App Center's id).",
			DisplayAttrs: &framework.DisplayAttributes{Name: "Company UUID"},
		},
		"request_token": {
			Type: framework.TypeString,
			Description: "A company request token (24 hours). Exchanged at once for a refresh token; never stored. " +
				"Exclusive with refresh_token.",
			DisplayAttrs: &framework.DisplayAttributes{Name: "Company request token", Sensitive: true},
		},
		"refresh_token": {
			Type: framework.TypeString,
			Description: "An existing company refresh token. Checked with a refresh grant before it is stored. " +
				"Write-only. Exclusive with request_token.",
			DisplayAttrs: &framework.DisplayAttributes{Name: "Company refresh token", Sensitive: true},
		},
		"geolocation": {
			Type: framework.TypeString,
			Description: "With refresh_token: the geolocation Concur named with it (SAP's tutorial keeps it in " +
				"refreshTokenObjectFile.json). The refresh grant that checks the token goes there; it must match allowed_hosts.",
			DisplayAttrs: &framework.DisplayAttributes{Name: "Geolocation of the refresh token"},
		},
		"revoke": {
			Type:        framework.TypeBool,
			Query:       true,
			Description: "Delete only: also revoke the connection at Concur (all of the company's refresh tokens for this app).",
		},
	}
}

// nameField is the company name in companies/<name>/... paths.
var nameField = &framework.FieldSchema{
	Type:        framework.TypeString,
	Description: "The company's name on this mount (letters, digits, '.', '_', '-'; up to 64; a company UUID is fine).",
}

func pathCompanies(b *backend) []*framework.Path {
	fields := companyFields()
	fields["name"] = nameField
	fields["prewarm"] = &framework.FieldSchema{
		Type:        framework.TypeBool,
		Description: "Keep an access token ready at all times (default: off for named companies, on for default).",
	}
	forward := func(cb framework.OperationFunc, summary string) *framework.PathOperation {
		return &framework.PathOperation{Callback: cb, Summary: summary, ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true}
	}
	return []*framework.Path{
		pathCompaniesList(b),
		{
			Pattern:        "companies/" + framework.GenericNameRegex("name"),
			DisplayAttrs:   &framework.DisplayAttributes{OperationPrefix: "concur", OperationSuffix: "company"},
			Fields:         fields,
			ExistenceCheck: b.pathCompanyExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.CreateOperation: forward(b.pathCompanyWrite, "Connect a company."),
				logical.UpdateOperation: forward(b.pathCompanyWrite, "Change a company or replace its tokens."),
				logical.ReadOperation:   &framework.PathOperation{Callback: b.pathCompanyRead, Summary: "Read a company's state."},
				logical.DeleteOperation: forward(b.pathCompanyDelete, "Remove a company; revoke=true also revokes it at Concur."),
			},
			HelpSynopsis:    pathCompaniesHelpSynopsis,
			HelpDescription: strings.TrimSpace(pathCompaniesHelpDescription),
		},
	}
}

// companyName is the company a request is about: the name in the path, or
// the default company for the root paths. The name is checked before it
// goes anywhere near storage.
func companyNameOf(d *framework.FieldData) (string, *logical.Response) {
	name, ok := pathName(d)
	if !ok {
		return defaultCompanyName, nil
	}
	if validCompanyName(name) {
		return name, nil
	}
	return "", fieldError("name", "must be 1 to 64 letters, digits, '.', '_' or '-', starting and ending with a letter or digit")
}

// pathName is the company name a companies/<name>/... path captured (ok:
// the path has one). It reads FieldData.Raw, where the framework puts each
// capture as a string: GetOk would convert it again through mapstructure, a
// measurable share of a companies/<name>/creds read (docs/performance.md).
func pathName(d *framework.FieldData) (name string, ok bool) {
	if _, ok := d.Schema["name"]; !ok {
		return "", false
	}
	raw, ok := d.Raw["name"]
	name, _ = raw.(string) // a capture always is one; "" fails validCompanyName
	return name, ok
}

// companyToWrite is the company a write creates, changes or deletes, kept
// in memory until release is called (and after only if it then exists).
func (b *backend) companyToWrite(d *framework.FieldData) (co *company, release func(), resp *logical.Response) {
	name, resp := companyNameOf(d)
	if resp != nil {
		return nil, nil, resp
	}
	co, release = b.companies.acquire(name)
	return co, release, nil
}

// refuseDefaultCompanyWrite: companies/default is configured through config
// only, so that a policy granting companies/+ (the onboarding service's)
// cannot repoint the root creds or switch its prewarm.
func refuseDefaultCompanyWrite(d *framework.FieldData) *logical.Response {
	if name, ok := pathName(d); ok && name == defaultCompanyName {
		return logical.ErrorResponse("companies/%s: the default company is configured through config only "+
			"(write or delete concur/config); its reads and companies/%s/creds, /rotate and /profile work here as well",
			defaultCompanyName, defaultCompanyName)
	}
	return nil
}

// companyToRead is the company a read is about; a named company that does
// not exist is a 404 (and leaves nothing behind in memory).
func (b *backend) companyToRead(ctx context.Context, s logical.Storage, d *framework.FieldData) (*company, *logical.Response, error) {
	name, resp := companyNameOf(d)
	if resp != nil {
		return nil, resp, nil
	}
	co, err := b.lookup(ctx, s, name)
	switch {
	case err != nil:
		return nil, nil, err
	case co == nil && name == defaultCompanyName:
		return nil, nil, errNotConfigured()
	case co == nil:
		return nil, nil, errNoCompany(name)
	}
	return co, nil, nil
}

func (b *backend) pathCompanyExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	name, resp := companyNameOf(d)
	if resp != nil {
		return false, nil
	}
	co, err := b.lookup(ctx, req.Storage, name)
	return co != nil, err
}

func (b *backend) pathCompanyRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	name, resp := companyNameOf(d)
	if resp != nil {
		return resp, nil
	}
	co, err := b.lookup(ctx, req.Storage, name)
	if err != nil || co == nil {
		return nil, err
	}
	data := companyResponseData(co.current())
	data["name"] = co.name
	return &logical.Response{Data: data}, nil
}

// companyResponseData is a company's state as reads show it: no secret.
func companyResponseData(v companyView) map[string]any {
	if v.unreadable != "" {
		return map[string]any{"company_uuid": "", "status": statusUnreadable, "refresh_token_set": false,
			"last_error": msgUnreadable + ": " + v.unreadable}
	}
	if v.entry == nil {
		return map[string]any{"company_uuid": "", "status": statusNotConfigured, "refresh_token_set": false}
	}
	e, t := v.entry, v.entry.Token
	lastError := t.LastError
	if v.unsaved {
		lastError = msgUnsaved
	}
	return map[string]any{
		"company_uuid":             e.CompanyUUID,
		"prewarm":                  e.Prewarm,
		"refresh_token_set":        t.RefreshToken != "",
		"geolocation":              t.Geolocation,
		"scope":                    t.Scope,
		"access_token_expires_at":  formatTime(t.ExpiresAt),
		"refresh_token_expires_at": formatTime(t.RefreshExpiresAt),
		"last_refresh_at":          formatTime(t.LastRefreshAt),
		"last_error":               lastError,
		"last_error_code":          t.LastErrorCode,
		"last_error_at":            formatTime(t.LastErrorAt),
		"status":                   viewStatus(v),
		"warnings":                 answerWarnings(t),
	}
}

func (b *backend) pathCompanyWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d, "revoke"); resp != nil {
		return resp, nil
	}
	if resp := refuseDefaultCompanyWrite(d); resp != nil {
		return resp, nil
	}
	if !b.writeSafe() {
		return nil, logical.ErrReadOnly
	}
	co, release, resp := b.companyToWrite(d)
	if resp != nil {
		return resp, nil
	}
	defer release()
	app, err := b.app.load(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if app.entry == nil {
		return logical.ErrorResponse("config: write the app's client_id and client_secret to concur/config first"), nil
	}
	prev, err := co.load(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	change, resp := companyChangeFrom(d, app, prev.entry, co.name)
	if resp != nil {
		return resp, nil
	}
	next, err := co.configure(ctx, req.Storage, change)
	if err != nil {
		return companyWriteError(change, err)
	}
	b.Logger().Info("company written", "company", co.name, "bootstrapped", change.bootstraps(), "geolocation", next.Token.Geolocation)
	b.sendEvent(ctx, companyWriteEvent(co.name, companyPath(co.name, ""), next))
	data := companyResponseData(companyView{entry: next})
	data["name"] = co.name
	resp = &logical.Response{Data: data}
	for _, w := range tokenWarnings(next.Token) {
		resp.AddWarning(w)
	}
	return resp, nil
}

func (b *backend) pathCompanyDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	if resp := refuseDefaultCompanyWrite(d); resp != nil {
		return resp, nil
	}
	if !b.writeSafe() {
		return nil, logical.ErrReadOnly
	}
	co, release, resp := b.companyToWrite(d)
	if resp != nil {
		return resp, nil
	}
	defer release()
	if err := b.deleteCompany(ctx, req.Storage, co, d.Get("revoke").(bool)); err != nil {
		return nil, err
	}
	b.sendEvent(ctx, companyDeleteEvent(co.name))
	return nil, nil
}

// deleteCompany removes a company's tokens, first revoking its connection
// at Concur when asked (and keeping everything if that fails).
func (b *backend) deleteCompany(ctx context.Context, s logical.Storage, co *company, revoke bool) error {
	if revoke {
		if err := b.revokeConnection(ctx, s, co); err != nil {
			return notRevoked(co.name, err)
		}
		b.Logger().Info("connection revoked at Concur", "company", co.name)
	}
	if err := co.remove(ctx, s); err != nil {
		if isReadOnly(err) {
			return logical.ErrReadOnly
		}
		return err
	}
	return nil
}

// notRevoked is the error of a delete whose revocation failed: it says
// that nothing was deleted, and keeps the status (and Concur's words).
func notRevoked(name string, err error) error {
	var coded logical.HTTPCodedError
	if !errors.As(err, &coded) {
		return err // ErrReadOnly, for Vault to forward
	}
	return logical.CodedError(coded.Code(), fmt.Sprintf("%s was not deleted (everything is kept): "+
		"its connection could not be revoked at Concur: %s", companyPath(name, ""), coded.Error()))
}

// checkGeolocationsAllowed refuses allowed_hosts that would no longer admit
// a company's current geolocation (except skip's, replaced in this write).
func (b *backend) checkGeolocationsAllowed(ctx context.Context, s logical.Storage, app appView, skip string) (*logical.Response, error) {
	names, err := b.companyNames(ctx, s)
	if err != nil {
		return nil, err
	}
	allow, views := app.client.AllowedHosts(), b.companies.views()
	for _, name := range names {
		e := views[name].entry
		if name == skip || e == nil || e.Token.Geolocation == "" {
			continue
		}
		if err := allow.Check(e.Token.Geolocation); err != nil {
			return fieldError("allowed_hosts", "the current geolocation of company %s would no longer be allowed: %v", name, err), nil
		}
	}
	return nil, nil
}

// companyWriteError is what the writer of a company change that failed sees.
func companyWriteError(c companyChange, err error) (*logical.Response, error) {
	var ce *concur.Error
	switch {
	case isReadOnly(err):
		return nil, logical.ErrReadOnly
	case errors.As(err, &ce):
		return bootstrapError(c.bootstrapField(), err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, err // the writer left or timed out; the grant goes on (see company.run)
	case errors.As(err, new(logical.HTTPCodedError)), errors.Is(err, errAppUnsaved):
		return nil, err
	case c.bootstraps():
		return nil, fmt.Errorf("%s: %w", msgUnsaved, err)
	}
	return nil, err
}

// bootstrapError explains why Concur would not issue a token for the given
// settings. A refusal names the field most likely at fault (400); trouble at
// Concur is a gateway error.
func bootstrapError(field string, err error) (*logical.Response, error) {
	var ce *concur.Error
	if !errors.As(err, &ce) || ce.Class != concur.ClassPermanent {
		return nil, upstreamError(err)
	}
	switch ce.Code {
	case concur.CodeClientNotFound:
		field = "client_id"
	case concur.CodeBadClientSecret, concur.CodeClientDisabled:
		field = "client_id, client_secret"
	case concur.CodeCompanyNotEnabled:
		field = "company_uuid"
	case concur.CodeIncorrectCredentials:
		if field == "request_token" {
			field = "request_token (or client_secret)"
		}
	}
	if field == "" {
		field = "config"
	}
	return logical.ErrorResponse("%s: Concur refused it, nothing was stored: %s", field, ce.Error()), nil
}

// revokeConnection asks Concur to revoke the company's connection. When
// Concur refuses the bearer token, an earlier attempt may already have
// revoked it (its answer lost on the way): a refresh grant tells. If Concur
// no longer knows the refresh token, the connection is gone, which is what
// was asked for; if it issues a new token, the revocation is tried once more;
// any other refusal fails the delete (see connectionGone).
func (b *backend) revokeConnection(ctx context.Context, s logical.Storage, co *company) error {
	sv, err := co.usable(ctx, s, minServeTTL)
	if err != nil {
		return err
	}
	// A change at Concur: after Clean it is the next instance's to make.
	ctx, stop := b.gate.callContext(ctx)
	defer stop()
	err = b.gate.do(func() error {
		return sv.app.client.RevokeConnection(ctx, sv.entry.Token.Geolocation, concur.NewSecret(sv.entry.Token.AccessToken))
	})
	if !concur.IsUnauthorized(err) {
		if err != nil {
			return upstreamError(err)
		}
		return nil
	}
	e, rerr := co.rotate(ctx, s)
	if connectionGone(rerr) {
		return nil
	}
	if rerr != nil {
		return upstreamError(rerr)
	}
	err = b.gate.do(func() error {
		return sv.app.client.RevokeConnection(ctx, e.Token.Geolocation, concur.NewSecret(e.Token.AccessToken))
	})
	if err != nil {
		return upstreamError(err)
	}
	return nil
}

// connectionGone: Concur refused the refresh token itself (code 108: bad,
// expired or revoked), so the connection is already revoked. A refusal of
// the app (59, 61, 64) or of the company (53, 123) leaves the connection
// live at Concur: deleting its only refresh token then would orphan it.
func connectionGone(err error) bool {
	var ce *concur.Error
	return concur.RefusedForGood(err) && errors.As(err, &ce) && ce.Code == concur.CodeBadRefreshToken
}
