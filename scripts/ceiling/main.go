// Command ceiling is the throughput ceiling `make bench` measures the engine
// against: the smallest external secrets plugin on the same Vault sdk (this
// module's go.mod, so the same version as the engine), answering a read of
// `creds` with a fixed map shaped like the engine's creds response. Like the
// engine (backend/system_view.go), it answers the framework's per-request
// replication-state question from a copy at most a second old, so the only
// difference left between the two is the engine's own work per read.
//
// Vault starts it like any plugin (scripts/bench.sh registers it by SHA-256
// and version); -version prints the version to register.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/plugin"

	"github.com/concur-vault/vault-plugin-secrets-concur/internal/pprofserve"
)

// version is what scripts/bench.sh registers the ceiling as.
const version = "v0.0.1"

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "-version" || os.Args[1] == "--version") {
		fmt.Println("ceiling", version)
		return
	}
	logger := hclog.New(&hclog.LoggerOptions{JSONFormat: true})
	if _, err := pprofserve.FromEnv(); err != nil { // as the engine does, for its profile next to the engine's
		logger.Error("not serving pprof", "error", err)
	}
	if err := plugin.ServeMultiplex(&plugin.ServeOpts{BackendFactoryFunc: factory}); err != nil {
		logger.Error("plugin shutting down", "error", err)
		os.Exit(1)
	}
}

func factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &framework.Backend{
		BackendType:    logical.TypeLogical,
		RunningVersion: version,
		Paths: []*framework.Path{{
			Pattern: "creds",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: readCreds(strings.Repeat("a", 910))},
			},
		}},
	}
	cached := *conf
	cached.System = &cachedSystemView{SystemView: conf.System}
	if err := b.Setup(ctx, &cached); err != nil {
		return nil, err
	}
	return b, nil
}

// readCreds answers a fixed map with the engine's creds keys and values of
// the sizes the simulator's tokens give, built per read as the engine does.
func readCreds(accessToken string) framework.OperationFunc {
	return func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
		return &logical.Response{Data: map[string]any{
			"access_token":        accessToken,
			"token_type":          "Bearer",
			"expires_at":          "2026-01-01T00:00:00Z",
			"ttl":                 int64(3000),
			"rotation_period":     int64(3300),
			"last_vault_rotation": "2026-01-01T00:00:00Z",
			"geolocation":         "http://127.0.0.1:12345",
			"company_uuid":        "00000000-0000-0000-0000-000000000000",
			"scope":               "openid user.read company.read",
		}}, nil
	}
}

// cachedSystemView is backend/system_view.go's cache, in short.
type cachedSystemView struct {
	logical.SystemView

	mu    sync.Mutex
	state consts.ReplicationState
	until time.Time
}

func (c *cachedSystemView) ReplicationState() consts.ReplicationState {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Before(c.until) {
		return c.state
	}
	c.state, c.until = c.SystemView.ReplicationState(), now.Add(time.Second)
	return c.state
}
