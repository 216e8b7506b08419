package backend

import (
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// companyChange is a write of a company, validated by the handler.
type companyChange struct {
	companyUUID string
	prewarm     bool
	// app is the app the grant uses: a config write may change it in the
	// same request; it is stored after the company (and is current from
	// the moment a grant made with it succeeded).
	app appView
	// requestToken or refreshToken (at most one) bootstraps the company
	// with a grant; with neither the stored tokens are kept.
	requestToken, refreshToken concur.Secret
	// refreshBase is where an imported refresh token is checked: its
	// geolocation when given, else base_url.
	refreshBase string
}

func (c companyChange) bootstraps() bool { return !c.requestToken.IsZero() || !c.refreshToken.IsZero() }

// bootstrapField names the field a bootstrap grant's failure is about.
func (c companyChange) bootstrapField() string {
	if !c.requestToken.IsZero() {
		return "request_token"
	}
	return "refresh_token"
}

// hasCompanyFields: the write says something about the default company.
func hasCompanyFields(d *framework.FieldData) bool {
	for _, f := range []string{"company_uuid", "request_token", "refresh_token", "geolocation"} {
		if _, ok := d.GetOk(f); ok {
			return true
		}
	}
	return false
}

func hasBootstrapFields(d *framework.FieldData) bool {
	_, req := d.GetOk("request_token")
	_, ref := d.GetOk("refresh_token")
	return req || ref
}

// companyChangeFrom reads and validates a write of the company called name,
// whose stored entry is prev (nil when new), for app.
func companyChangeFrom(d *framework.FieldData, app appView, prev *companyEntry, name string) (companyChange, *logical.Response) {
	c := companyChange{app: app, prewarm: name == defaultCompanyName}
	if prev != nil {
		c.companyUUID, c.prewarm = prev.CompanyUUID, prev.Prewarm
	}
	if raw, ok := d.GetOk("company_uuid"); ok {
		v := strings.ToLower(strings.TrimSpace(raw.(string)))
		if err := concur.ValidateUserID(v); err != nil {
			return c, fieldError("company_uuid", "must be a UUID such as 3df11695-e8bb-40ff-8e98-c85913ab2789")
		}
		c.companyUUID = v
	}
	if raw, ok := d.GetOk("prewarm"); ok {
		c.prewarm = raw.(bool)
	}
	var resp *logical.Response
	if c.requestToken, c.refreshToken, resp = tokenFields(d); resp != nil {
		return c, resp
	}
	if c.companyUUID == "" {
		return c, fieldError("company_uuid", "is required")
	}
	if c.refreshBase, resp = refreshTokenGeolocation(d, c.refreshToken, app); resp != nil {
		return c, resp
	}
	if prev != nil && !c.bootstraps() && c.companyUUID != prev.CompanyUUID {
		return c, fieldError("company_uuid", "changing it needs a new request_token or refresh_token for that company")
	}
	return c, nil
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
		return concur.Secret{}, concur.Secret{}, resp
	}
	if refreshToken, resp = get("refresh_token"); resp != nil {
		return concur.Secret{}, concur.Secret{}, resp
	}
	if !requestToken.IsZero() && !refreshToken.IsZero() {
		resp = logical.ErrorResponse("request_token, refresh_token: give one or the other, not both")
	}
	return requestToken, refreshToken, resp
}

// refreshTokenGeolocation is where the refresh grant checking an imported
// refresh token goes: the geolocation given with it (checked against the
// allow-list), or base_url.
func refreshTokenGeolocation(d *framework.FieldData, refreshToken concur.Secret, app appView) (string, *logical.Response) {
	raw, ok := d.GetOk("geolocation")
	if !ok {
		return app.entry.BaseURL, nil
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
	if err := app.client.AllowedHosts().Check(geo); err != nil {
		return "", fieldError("geolocation", "%s is not allowed by allowed_hosts", geo)
	}
	return geo, nil
}
