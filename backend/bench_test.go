package backend

import (
	"context"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// A warm creds read through the backend's own request handling: the path
// every app's `vault read concur/creds` takes once Vault has routed it.
func BenchmarkCredsReadWarm(b *testing.B) {
	e := newTestEnv(b, concurtest.Options{})
	e.bootstrap()
	req := &logical.Request{Operation: logical.ReadOperation, Path: "creds", Storage: e.storage}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := e.b.HandleRequest(ctx, req)
		if err != nil || resp.Data["access_token"] == "" {
			b.Fatal(err)
		}
	}
}

func BenchmarkCredsReadWarmParallel(b *testing.B) {
	e := newTestEnv(b, concurtest.Options{})
	e.bootstrap()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(500) // 2 cores x 500 = 1,000 concurrent readers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := &logical.Request{Operation: logical.ReadOperation, Path: "creds", Storage: e.storage}
		for pb.Next() {
			if _, err := e.b.HandleRequest(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
