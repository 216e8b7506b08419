// Command vault-plugin-secrets-concur is the plugin binary Vault runs. It
// speaks Vault's plugin protocol on stdin/stdout, so it is not meant to be
// started by hand.
package main

import (
	"os"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/plugin"

	"github.com/concur-vault/vault-plugin-secrets-concur/backend"
)

func main() {
	// One process serves every mount of this plugin (multiplexing); each
	// mount gets its own backend from the factory.
	if err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: backend.Factory,
	}); err != nil {
		hclog.New(&hclog.LoggerOptions{JSONFormat: true}).Error("plugin shutting down", "error", err)
		os.Exit(1)
	}
}
