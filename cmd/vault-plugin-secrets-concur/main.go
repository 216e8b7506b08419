// Command vault-plugin-secrets-concur is the plugin binary Vault runs. It
// speaks Vault's plugin protocol on stdin/stdout, so it is not meant to be
// started by hand, except with -version, which prints the stamped version
// (the value for `vault plugin register -version`), and with -install DIR,
// which copies the binary into DIR as vault-plugin-secrets-concur and prints
// its SHA-256 (the image's init-container step: the image has no shell). Any
// other arguments start the plugin as before. With CONCUR_PLUGIN_PPROF_ADDR
// set to a loopback address it also serves net/http/pprof there (internal/pprofserve).
package main

import (
	"fmt"
	"os"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/plugin"

	"github.com/concur-vault/vault-plugin-secrets-concur/backend"
	"github.com/concur-vault/vault-plugin-secrets-concur/internal/pprofserve"
)

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "-version" || os.Args[1] == "--version") {
		fmt.Println("vault-plugin-secrets-concur", backend.Version)
		return
	}
	if len(os.Args) == 3 && (os.Args[1] == "-install" || os.Args[1] == "--install") {
		if err := installSelf(os.Args[2], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "vault-plugin-secrets-concur -install:", err)
			os.Exit(1)
		}
		return
	}
	logger := hclog.New(&hclog.LoggerOptions{JSONFormat: true})
	if _, err := pprofserve.FromEnv(); err != nil {
		logger.Error("not serving pprof", "error", err)
	}
	// One process serves every mount of this plugin (multiplexing); each
	// mount gets its own backend from the factory.
	if err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: backend.Factory,
	}); err != nil {
		logger.Error("plugin shutting down", "error", err)
		os.Exit(1)
	}
}
