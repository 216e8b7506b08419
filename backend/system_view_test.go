package backend

import (
	"context"
	"sync/atomic"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// countingSystemView counts how often Vault is asked for the replication state.
type countingSystemView struct {
	*logical.StaticSystemView
	asks atomic.Int64
}

func (c *countingSystemView) ReplicationState() consts.ReplicationState {
	c.asks.Add(1)
	return c.StaticSystemView.ReplicationState()
}

func TestRequestsDoNotAskVaultForReplicationStateEachTime(t *testing.T) {
	sys := &countingSystemView{StaticSystemView: logical.TestSystemView()}
	b := newBackend(options{})
	conf := &logical.BackendConfig{Logger: hclog.NewNullLogger(), System: sys, StorageView: &logical.InmemStorage{}}
	if err := b.Setup(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	s := &logical.InmemStorage{}
	for range 100 {
		// Not configured yet: a 400, but routed through the framework's forwarding check.
		if _, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "creds", Storage: s}); codeOf(
			err,
		) != 400 {
			t.Fatalf("creds: %v", err)
		}
	}
	if n := sys.asks.Load(); n > 2 {
		t.Errorf("100 requests asked Vault for the replication state %d times", n)
	}

	// Decisions about calling Concur always ask.
	before := sys.asks.Load()
	sys.ReplicationStateVal = consts.ReplicationPerformanceStandby
	if b.writeSafe() {
		t.Errorf("writeSafe used a cached state: a performance standby looks writable")
	}
	if sys.asks.Load() != before+1 {
		t.Errorf("writeSafe did not ask Vault")
	}
}
