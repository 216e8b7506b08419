package e2e

import (
	"os"
	"testing"

	"github.com/hashicorp/vault/api"
)

// TestHarness checks the harness against Vault alone (no plugin): a single server with file
// storage survives a restart, and a three-node raft cluster fails over. It runs only with
// E2E_HARNESS=1 because the plugin tests exercise the same code paths.
func TestHarness(t *testing.T) {
	if os.Getenv("E2E_HARNESS") != "1" {
		t.Skip("set E2E_HARNESS=1 to run the harness self-test")
	}
	t.Run("file-restart", func(t *testing.T) {
		t.Parallel()
		n := StartInitUnseal(t, storageRaft)
		if err := n.Client.Sys().Mount("kv", &api.MountInput{Type: "kv"}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Client.Logical().Write("kv/x", map[string]any{"v": "1"}); err != nil {
			t.Fatal(err)
		}
		n.Restart()
		n.Unseal()
		n.WaitActive()
		s, err := n.Client.Logical().Read("kv/x")
		if err != nil || s == nil || s.Data["v"] != "1" {
			t.Fatalf("after restart: %v %v", s, err)
		}
	})
	t.Run("raft-failover", func(t *testing.T) {
		t.Parallel()
		c := StartRaftCluster(t, 3)
		a := c.Active()
		if err := a.Client.Sys().Mount("kv", &api.MountInput{Type: "kv"}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Client.Logical().Write("kv/x", map[string]any{"v": "1"}); err != nil {
			t.Fatal(err)
		}
		for _, nd := range c.Standbys(a) {
			s, err := nd.Client.Logical().Read("kv/x")
			if err != nil || s == nil || s.Data["v"] != "1" {
				t.Fatalf("via standby %s: %v %v", nd.cfg.Name, s, err)
			}
		}
		a.Stop()
		b := c.Active()
		if b == a {
			t.Fatal("same active")
		}
		if _, err := b.Client.Logical().Write("kv/y", map[string]any{"v": "2"}); err != nil {
			t.Fatal(err)
		}
		for _, nd := range c.Standbys(b) {
			s, err := nd.Client.Logical().Read("kv/y")
			if err != nil || s == nil || s.Data["v"] != "2" {
				t.Fatalf("via standby %s after failover: %v %v", nd.cfg.Name, s, err)
			}
		}
	})
}
