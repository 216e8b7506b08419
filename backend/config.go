package backend

import (
	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

const (
	defaultRefreshMargin = 10 * 60 // seconds
)

func (c configEntry) credentials() concur.Credentials {
	return concur.Credentials{ClientID: c.ClientID, ClientSecret: concur.NewSecret(c.ClientSecret)}
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
