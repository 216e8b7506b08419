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

// allowList is where tokens may go. Patterns were validated when written,
// so a parse failure here means corrupt storage: allow nothing.
func (c configEntry) allowList() *concur.HostAllowList {
	l, err := concur.ParseAllowedHosts(c.AllowedHosts)
	if err != nil {
		l, _ = concur.ParseAllowedHosts([]string{"https://invalid.invalid"})
	}
	return l
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
	})
}
