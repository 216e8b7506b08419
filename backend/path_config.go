package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

const (
	minRefreshMargin = time.Minute
	maxRefreshMargin = 55 * time.Minute
	maxFieldLength   = 4096
	maxAllowedHosts  = 32
	maxPatternLength = 256
)

const pathConfigHelpSynopsis = "Configure the Concur app credentials and company token, and see the engine's state."

const pathConfigHelpDescription = `
Write the app's credentials, the company UUID, and either a company request
token (request_token, valid 24 hours, from Concur's Company Request Token
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
refresh_margin (seconds), client_secret_set, refresh_token_set, geolocation,
scope, access_token_expires_at, refresh_token_expires_at, last_refresh_at,
last_error (with Concur's status, code and correlation id), last_error_at,
status, warnings (fields of Concur's last token answer that were unusable).

Delete removes settings and tokens. With revoke=true the engine first asks
Concur to revoke the connection (DELETE /app-mgmt/v0/connections), and keeps
everything if that fails.
`

func pathConfig(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "config",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "concur",
		},
		Fields: map[string]*framework.FieldSchema{
			"client_id": {
				Type:        framework.TypeString,
				Description: "OAuth2 client id (App ID) of the app registered with Concur. Required on first write.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Client ID",
				},
			},
			"client_secret": {
				Type:        framework.TypeString,
				Description: "OAuth2 client secret of the app. Write-only. Required on first write.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name:      "Client secret",
					Sensitive: true,
				},
			},
			"company_uuid": {
				Type:        framework.TypeString,
				Description: "The company's UUID, as shown by Concur's Company Request Token tool. Required on first write.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Company UUID",
				},
			},
			"request_token": {
				Type:        framework.TypeString,
				Description: "A company request token (24 hours). Exchanged at once for a refresh token; never stored. Exclusive with refresh_token.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name:      "Company request token",
					Sensitive: true,
				},
			},
			"refresh_token": {
				Type:        framework.TypeString,
				Description: "An existing company refresh token. Checked with a refresh grant before it is stored. Write-only. Exclusive with request_token.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name:      "Company refresh token",
					Sensitive: true,
				},
			},
			"geolocation": {
				Type: framework.TypeString,
				Description: "With refresh_token: the geolocation Concur named with it (SAP's tutorial keeps it in " +
					"refreshTokenObjectFile.json). The refresh grant that checks the token goes there; it must match allowed_hosts.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Geolocation of the refresh token",
				},
			},
			"base_url": {
				Type:        framework.TypeString,
				Default:     concur.DefaultBaseURL,
				Description: "Concur host for the first token request (scheme://host). Afterwards the geolocation Concur returns is used. Default: " + concur.DefaultBaseURL + ".",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Base URL",
				},
			},
			"allowed_hosts": {
				Type:        framework.TypeCommaStringSlice,
				Default:     []string{concur.DefaultAllowedHost},
				Description: `URL patterns (scheme://host[:port], host may start with "*.", port may be "*") that tokens may be sent to. base_url and every geolocation Concur names must match one. Default: ` + concur.DefaultAllowedHost + ".",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Allowed hosts",
				},
			},
			"refresh_margin": {
				Type:        framework.TypeDurationSecond,
				Default:     defaultRefreshMargin,
				Description: "Renew the access token when less than this is left (1m to 55m; default 10m). Renewing also keeps the refresh token alive.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Refresh margin",
				},
			},
			"revoke": {
				Type:        framework.TypeBool,
				Query:       true,
				Description: "Delete only: also revoke the connection at Concur (all of the company's refresh tokens for this app).",
			},
		},
		ExistenceCheck: b.pathConfigExists,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.CreateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				Summary:                     "Configure the engine and bootstrap its company token.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				Summary:                     "Change settings or replace the company token.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathConfigRead,
				Summary:  "Read the settings and the engine's state (never a secret).",
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
	snap, err := b.tokens.load(ctx, req.Storage)
	if err != nil {
		return false, err
	}
	return snap.state != nil, nil
}

func (b *backend) pathConfigRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	snap, err := b.tokens.load(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if snap.state == nil {
		return nil, nil
	}
	resp := &logical.Response{Data: configResponseData(snap.state, snap.unsaved)}
	if w := snap.state.Token.AnswerWarning; w != "" {
		resp.AddWarning(w)
	}
	for _, w := range b.deprecations.warnings() {
		resp.AddWarning(w)
	}
	return resp, nil
}

// configResponseData is what config read shows: settings and state, no secret.
func configResponseData(st *engineState, unsaved bool) map[string]any {
	c, t := st.Config, st.Token
	status := t.Status
	if status == "" {
		status = statusNeedsBootstrap
	}
	lastError := t.LastError
	if unsaved {
		status, lastError = statusDegraded, msgUnsaved
	}
	return map[string]any{
		"client_id":                c.ClientID,
		"company_uuid":             c.CompanyUUID,
		"base_url":                 c.BaseURL,
		"allowed_hosts":            c.AllowedHosts,
		"refresh_margin":           int64(c.RefreshMargin / time.Second),
		"client_secret_set":        c.ClientSecret != "",
		"refresh_token_set":        t.RefreshToken != "",
		"geolocation":              t.Geolocation,
		"scope":                    t.Scope,
		"access_token_expires_at":  formatTime(t.ExpiresAt),
		"refresh_token_expires_at": formatTime(t.RefreshExpiresAt),
		"last_refresh_at":          formatTime(t.LastRefreshAt),
		"last_error":               lastError,
		"last_error_at":            formatTime(t.LastErrorAt),
		"status":                   status,
		"warnings":                 answerWarnings(t),
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// pathConfigWrite validates the new settings, obtains a working token from
// Concur when a request or refresh token is given, and stores settings and
// tokens together, or nothing.
func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d, "revoke"); resp != nil {
		return resp, nil
	}
	// Vault forwards writes from performance standbys and secondaries (see
	// the Forward flags); this also covers any other node that may not write.
	if !b.writeSafe() {
		return nil, logical.ErrReadOnly
	}
	snap, err := b.tokens.load(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	prev := snap.state

	cfg := configEntry{BaseURL: concur.DefaultBaseURL, AllowedHosts: []string{concur.DefaultAllowedHost}, RefreshMargin: defaultRefreshMargin * time.Second}
	if prev != nil {
		cfg = prev.Config
	}
	if resp := applyConfigFields(&cfg, d); resp != nil {
		return resp, nil
	}
	requestToken, refreshToken, resp := tokenFields(d)
	if resp != nil {
		return resp, nil
	}
	for _, f := range []struct{ field, value string }{{"client_id", cfg.ClientID}, {"client_secret", cfg.ClientSecret}, {"company_uuid", cfg.CompanyUUID}} {
		if f.value == "" {
			return fieldError(f.field, "is required"), nil
		}
	}
	client, err := b.newConcurClient(cfg.AllowedHosts)
	if err != nil {
		return fieldError("allowed_hosts", "%v", err), nil
	}
	allow := client.AllowedHosts()
	if err := allow.Check(cfg.BaseURL); err != nil {
		return fieldError("base_url", "%s is not allowed by allowed_hosts %v", cfg.BaseURL, cfg.AllowedHosts), nil
	}
	refreshBase, resp := refreshTokenGeolocation(d, refreshToken, allow, cfg.BaseURL)
	if resp != nil {
		return resp, nil
	}
	change := configChange{config: cfg, client: client, requestToken: requestToken, refreshToken: refreshToken, refreshBase: refreshBase}
	if prev != nil && !change.bootstraps() {
		if cfg.ClientID != prev.Config.ClientID || cfg.CompanyUUID != prev.Config.CompanyUUID {
			return logical.ErrorResponse("client_id, company_uuid: changing them needs a new request_token or refresh_token for that app and company"), nil
		}
		if geo := prev.Token.Geolocation; geo != "" {
			if err := allow.Check(geo); err != nil {
				return fieldError("allowed_hosts", "the current geolocation %s would no longer be allowed", geo), nil
			}
		}
	}

	next, err := b.tokens.configure(ctx, req.Storage, change)
	if err != nil {
		return configWriteError(change, err)
	}
	b.Logger().Info("configuration written", "bootstrapped", change.bootstraps(), "geolocation", next.Token.Geolocation)
	b.sendEvent(ctx, configWriteEvent(next))
	resp = &logical.Response{Data: configResponseData(next, false)}
	for _, w := range tokenWarnings(next.Token) {
		resp.AddWarning(w)
	}
	return resp, nil
}

// configWriteError is what the writer of a config change that failed sees.
func configWriteError(c configChange, err error) (*logical.Response, error) {
	var ce *concur.Error
	switch {
	case isReadOnly(err):
		return nil, logical.ErrReadOnly
	case errors.As(err, &ce):
		return bootstrapError(c.bootstrapField(), err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, err // the writer left or timed out; the grant goes on (see tokenStore.run)
	case errors.As(err, new(logical.HTTPCodedError)):
		return nil, err
	case c.bootstraps():
		return nil, fmt.Errorf("%s: %w", msgUnsaved, err)
	}
	return nil, err
}

// applyConfigFields copies and validates the non-token fields given.
func applyConfigFields(cfg *configEntry, d *framework.FieldData) *logical.Response {
	for _, field := range []string{"client_id", "client_secret"} {
		raw, ok := d.GetOk(field)
		if !ok {
			continue
		}
		v := strings.TrimSpace(raw.(string))
		if err := checkPrintable(v); err != nil {
			return fieldError(field, "%v", err)
		}
		if field == "client_id" {
			cfg.ClientID = v
		} else {
			cfg.ClientSecret = v
		}
	}
	if raw, ok := d.GetOk("company_uuid"); ok {
		v := strings.ToLower(strings.TrimSpace(raw.(string)))
		if err := concur.ValidateUserID(v); err != nil {
			return fieldError("company_uuid", "must be a UUID such as 3df11695-e8bb-40ff-8e98-c85913ab2789")
		}
		cfg.CompanyUUID = v
	}
	if raw, ok := d.GetOk("base_url"); ok {
		if len(raw.(string)) > maxPatternLength {
			return fieldError("base_url", "is longer than %d characters", maxPatternLength)
		}
		v, err := concur.NormalizeBaseURL(raw.(string))
		if err != nil {
			return fieldError("base_url", "%v", err)
		}
		cfg.BaseURL = v
	}
	if raw, ok := d.GetOk("allowed_hosts"); ok {
		hosts := make([]string, 0, len(raw.([]string)))
		for _, h := range raw.([]string) {
			if h = strings.TrimSpace(h); h != "" {
				hosts = append(hosts, h)
			}
			if len(h) > maxPatternLength {
				return fieldError("allowed_hosts", "a pattern is longer than %d characters", maxPatternLength)
			}
		}
		if len(hosts) == 0 {
			return fieldError("allowed_hosts", "needs at least one pattern")
		}
		if len(hosts) > maxAllowedHosts {
			return fieldError("allowed_hosts", "has more than %d patterns", maxAllowedHosts)
		}
		if _, err := concur.ParseAllowedHosts(hosts); err != nil {
			return fieldError("allowed_hosts", "%v", err)
		}
		cfg.AllowedHosts = hosts
	}
	if raw, ok := d.GetOk("refresh_margin"); ok {
		m := time.Duration(raw.(int)) * time.Second
		if m < minRefreshMargin || m > maxRefreshMargin {
			return fieldError("refresh_margin", "must be between %s and %s", minRefreshMargin, maxRefreshMargin)
		}
		cfg.RefreshMargin = m
	}
	return nil
}

// tokenFields reads request_token and refresh_token, at most one of them.
func tokenFields(d *framework.FieldData) (requestToken, refreshToken concur.Secret, resp *logical.Response) {
	get := func(field string) (concur.Secret, *logical.Response) {
		raw, ok := d.GetOk(field)
		if !ok {
			return concur.Secret{}, nil
		}
		v := strings.TrimSpace(raw.(string))
		if v == "" {
			return concur.Secret{}, fieldError(field, "is empty")
		}
		if err := checkPrintable(v); err != nil {
			return concur.Secret{}, fieldError(field, "%v", err)
		}
		return concur.NewSecret(v), nil
	}
	if requestToken, resp = get("request_token"); resp != nil {
		return
	}
	if refreshToken, resp = get("refresh_token"); resp != nil {
		return
	}
	if !requestToken.IsZero() && !refreshToken.IsZero() {
		resp = logical.ErrorResponse("request_token, refresh_token: give one or the other, not both")
	}
	return
}

// refreshTokenGeolocation is where the refresh grant checking an imported
// refresh token goes: the geolocation given with it (checked against the
// allow-list), or base_url.
func refreshTokenGeolocation(d *framework.FieldData, refreshToken concur.Secret, allow *concur.HostAllowList, baseURL string) (string, *logical.Response) {
	raw, ok := d.GetOk("geolocation")
	if !ok {
		return baseURL, nil
	}
	if refreshToken.IsZero() {
		return "", fieldError("geolocation", "goes with refresh_token (it names where that token lives)")
	}
	if len(raw.(string)) > maxPatternLength {
		return "", fieldError("geolocation", "is longer than %d characters", maxPatternLength)
	}
	geo, err := concur.NormalizeBaseURL(raw.(string))
	if err != nil {
		return "", fieldError("geolocation", "%v", err)
	}
	if err := allow.Check(geo); err != nil {
		return "", fieldError("geolocation", "%s is not allowed by allowed_hosts", geo)
	}
	return geo, nil
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

func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	if !b.writeSafe() {
		return nil, logical.ErrReadOnly
	}
	if d.Get("revoke").(bool) {
		if err := b.revokeConnection(ctx, req.Storage); err != nil {
			return nil, err
		}
		b.Logger().Info("connection revoked at Concur")
	}
	if err := b.tokens.remove(ctx, req.Storage); err != nil {
		if isReadOnly(err) {
			return nil, logical.ErrReadOnly
		}
		return nil, err
	}
	b.sendEvent(ctx, configDeleteEvent())
	return nil, nil
}

// revokeConnection asks Concur to revoke the company's connection. When
// Concur refuses the bearer token, an earlier attempt may already have
// revoked it (its answer lost on the way): a refresh grant tells. If Concur
// no longer knows the refresh token, the connection is gone, which is what
// was asked for; if it issues a new token, the revocation is tried once more.
func (b *backend) revokeConnection(ctx context.Context, s logical.Storage) error {
	sv, err := b.tokens.usable(ctx, s, minServeTTL)
	if err != nil {
		return err
	}
	err = sv.client.RevokeConnection(ctx, sv.state.Token.Geolocation, concur.NewSecret(sv.state.Token.AccessToken))
	if !concur.IsUnauthorized(err) {
		if err != nil {
			return upstreamError(err)
		}
		return nil
	}
	st, rerr := b.tokens.rotate(ctx, s)
	if concur.RefusedForGood(rerr) {
		return nil // Concur refuses the refresh token: the connection is already revoked
	}
	if rerr != nil {
		return upstreamError(rerr)
	}
	err = sv.client.RevokeConnection(ctx, st.Token.Geolocation, concur.NewSecret(st.Token.AccessToken))
	if err != nil {
		return upstreamError(err)
	}
	return nil
}
