package backend

import (
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// The app's settings: their defaults, bounds and validation live here, with
// the type.
const (
	defaultRefreshMargin = 10 * time.Minute
	minRefreshMargin     = time.Minute
	maxRefreshMargin     = 55 * time.Minute
	maxFieldLength       = 4096
	maxAllowedHosts      = 32
	maxPatternLength     = 256
)

// newAppEntry is an app with every default set.
func newAppEntry() appEntry {
	return appEntry{
		BaseURL:       concur.DefaultBaseURL,
		AllowedHosts:  []string{concur.DefaultAllowedHost},
		RefreshMargin: defaultRefreshMargin,
		MetricsDetail: metricsDetailAttention,
	}
}

// appFields are the schema of the app's settings on config.
func appFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"client_id": {
			Type:         framework.TypeString,
			Description:  "OAuth2 client id (App ID) of the app registered with Concur. Required on first write.",
			DisplayAttrs: &framework.DisplayAttributes{Name: "Client ID"},
		},
		"client_secret": {
			Type:         framework.TypeString,
			Description:  "OAuth2 client secret of the app. Write-only. Required on first write.",
			DisplayAttrs: &framework.DisplayAttributes{Name: "Client secret", Sensitive: true},
		},
		"base_url": {
			Type:    framework.TypeString,
			Default: concur.DefaultBaseURL,
			Description: "Concur host for a company's first token request (scheme://host). Afterwards the geolocation Concur " +
				"returns is used. Default: " + concur.DefaultBaseURL + ".",
			DisplayAttrs: &framework.DisplayAttributes{Name: "Base URL"},
		},
		"allowed_hosts": {
			Type:    framework.TypeCommaStringSlice,
			Default: []string{concur.DefaultAllowedHost},
			Description: `URL patterns (scheme://host[:port], host may start with "*.", port may be "*") that tokens may be ` +
				`sent to. base_url and every geolocation Concur names must match one. Default: ` + concur.DefaultAllowedHost + ".",
			DisplayAttrs: &framework.DisplayAttributes{Name: "Allowed hosts"},
		},
		"refresh_margin": {
			Type:    framework.TypeDurationSecond,
			Default: int(defaultRefreshMargin / time.Second),
			Description: "Renew a kept-ready access token when less than this is left (1m to 55m; default 10m). " +
				"Renewing also keeps the refresh token alive.",
			DisplayAttrs: &framework.DisplayAttributes{Name: "Refresh margin"},
		},
		"metrics_detail": {
			Type:    framework.TypeString,
			Default: metricsDetailAttention,
			Description: `Companies the metrics name: "attention" (default: only those that need an operator, at most ` +
				`100) or "full" (every company: for small mounts).`,
			AllowedValues: []any{metricsDetailAttention, metricsDetailFull},
			DisplayAttrs:  &framework.DisplayAttributes{Name: "Metrics detail"},
		},
	}
}

func (a *appEntry) credentials() concur.Credentials {
	return concur.Credentials{ClientID: a.ClientID, ClientSecret: concur.NewSecret(a.ClientSecret)}
}

// update copies and validates the app fields given in d.
func (a *appEntry) update(d *framework.FieldData) *logical.Response {
	if resp := a.updateCredentials(d); resp != nil {
		return resp
	}
	if raw, ok := d.GetOk("base_url"); ok {
		if len(raw.(string)) > maxPatternLength {
			return fieldError("base_url", "is longer than %d characters", maxPatternLength)
		}
		v, err := concur.NormalizeBaseURL(raw.(string))
		if err != nil {
			return fieldError("base_url", "%v", err)
		}
		a.BaseURL = v
	}
	if raw, ok := d.GetOk("allowed_hosts"); ok {
		hosts, resp := allowedHostsField(raw.([]string))
		if resp != nil {
			return resp
		}
		a.AllowedHosts = hosts
	}
	if raw, ok := d.GetOk("refresh_margin"); ok {
		m := secondsField(raw)
		if m < minRefreshMargin || m > maxRefreshMargin {
			return fieldError("refresh_margin", "must be between %s and %s", minRefreshMargin, maxRefreshMargin)
		}
		a.RefreshMargin = m
	}
	if raw, ok := d.GetOk("metrics_detail"); ok {
		v := raw.(string)
		if v != metricsDetailAttention && v != metricsDetailFull {
			return fieldError("metrics_detail", "must be %s or %s, got %.32q", metricsDetailAttention, metricsDetailFull, v)
		}
		a.MetricsDetail = v
	}
	for _, f := range []struct{ field, value string }{{"client_id", a.ClientID}, {"client_secret", a.ClientSecret}} {
		if f.value == "" {
			return fieldError(f.field, "is required")
		}
	}
	return nil
}

// updateCredentials copies and checks client_id and client_secret.
func (a *appEntry) updateCredentials(d *framework.FieldData) *logical.Response {
	for field, dst := range map[string]*string{"client_id": &a.ClientID, "client_secret": &a.ClientSecret} {
		if raw, ok := d.GetOk(field); ok {
			v := strings.TrimSpace(raw.(string))
			if err := checkPrintable(v); err != nil {
				return fieldError(field, "%v", err)
			}
			*dst = v
		}
	}
	return nil
}

func allowedHostsField(raw []string) ([]string, *logical.Response) {
	hosts := make([]string, 0, len(raw))
	for _, h := range raw {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
		if len(h) > maxPatternLength {
			return nil, fieldError("allowed_hosts", "a pattern is longer than %d characters", maxPatternLength)
		}
	}
	if len(hosts) == 0 {
		return nil, fieldError("allowed_hosts", "needs at least one pattern")
	}
	if len(hosts) > maxAllowedHosts {
		return nil, fieldError("allowed_hosts", "has more than %d patterns", maxAllowedHosts)
	}
	if _, err := concur.ParseAllowedHosts(hosts); err != nil {
		return nil, fieldError("allowed_hosts", "%v", err)
	}
	return hosts, nil
}

// secondsField is a TypeDurationSecond field's value (a count of seconds).
func secondsField(raw any) time.Duration {
	return time.Duration(raw.(int)) * time.Second //nolint:durationcheck // a count of seconds times one second
}

// appView is the app as the engine uses it: its settings and the client
// built for them (one client for every company: allowed_hosts is the app's).
type appView struct {
	entry  *appEntry // never modified once published
	client *concur.Client
}

// newConcurClient builds a client that sends tokens only to allowedHosts.
// Clients share the backend's HTTP transport, so rebuilding one is cheap.
func (b *backend) newConcurClient(allowedHosts []string) (*concur.Client, error) {
	return concur.New(concur.Options{
		HTTPClient:   b.httpClient,
		AllowedHosts: allowedHosts,
		Now:          b.now,
		UserAgent:    "vault-plugin-secrets-concur/" + Version,
		Retry:        b.retry,
		Logger:       b.Logger().Named("concur"),
		// Per mount, never global: each mount logs and shows its own notices.
		OnDeprecation: b.deprecations.note,
	})
}

// newAppView checks a's allowed hosts and base URL and builds its client.
func (b *backend) newAppView(a *appEntry) (appView, *logical.Response) {
	client, err := b.newConcurClient(a.AllowedHosts)
	if err != nil {
		return appView{}, fieldError("allowed_hosts", "%v", err)
	}
	if err := client.AllowedHosts().Check(a.BaseURL); err != nil {
		return appView{}, fieldError("base_url", "%s is not allowed by allowed_hosts %v", a.BaseURL, a.AllowedHosts)
	}
	return appView{entry: a, client: client}, nil
}
