package e2e

import (
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Group 2: ACL policies as operators would write them.
func TestPolicies(t *testing.T) {
	t.Parallel()
	s := newSim(t, concurtest.Options{})
	n := StartInitUnseal(t, storageInmem)
	SetupPlugin(t, mountPath, n)
	root := n.Client
	s.bootstrap(t, root, mountPath)
	user := s.Users(s.Company)[0]

	policies := map[string]string{
		"concur-creds": `path "concur/creds" { capabilities = ["read"] }`,
		"concur-profile": `path "concur/profile" { capabilities = ["read"] }
path "concur/profile/*" { capabilities = ["read"] }`,
	}
	for name, hcl := range policies {
		if err := root.Sys().PutPolicy(name, hcl); err != nil {
			t.Fatalf("put policy %s: %v", name, err)
		}
	}
	type access struct {
		creds, profileByID, profileSearch bool
	}
	cases := []struct {
		name   string
		client *api.Client
		want   access
	}{
		{"creds-only", clientWithPolicies(t, root, "concur-creds"), access{creds: true}},
		{"profile-only", clientWithPolicies(t, root, "concur-profile"), access{profileByID: true, profileSearch: true}},
		{"neither", clientWithPolicies(t, root, "default"), access{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client
			check := func(what string, allowed bool, err error, ok func() bool) {
				t.Helper()
				if allowed {
					if err != nil {
						t.Errorf("%s: want success, got %v", what, err)
					} else if !ok() {
						t.Errorf("%s: unexpected response", what)
					}
					return
				}
				wantStatus(t, err, 403, what)
			}

			sec, err := c.Logical().Read("concur/creds")
			check("read concur/creds", tc.want.creds, err, func() bool { return sec != nil && accessToken(sec) != "" })

			prof, err := c.Logical().Read("concur/profile/" + user.ID)
			check("read concur/profile/<id>", tc.want.profileByID, err, func() bool {
				if prof == nil {
					return false
				}
				pu, _ := prof.Data["user"].(map[string]any)
				return pu["id"] == user.ID
			})

			list, err := c.Logical().ReadWithData("concur/profile", map[string][]string{"user_name": {user.UserName}})
			check("read concur/profile user_name=...", tc.want.profileSearch, err, func() bool { return list != nil && list.Data["users"] != nil })

			// Nobody but root may touch config or rotate.
			_, err = c.Logical().Read("concur/config")
			wantStatus(t, err, 403, "read concur/config")
			_, err = c.Logical().Write("concur/config", map[string]any{"client_id": "x"})
			wantStatus(t, err, 403, "write concur/config")
			_, err = c.Logical().Delete("concur/config")
			wantStatus(t, err, 403, "delete concur/config")
			_, err = c.Logical().Write("concur/rotate", nil)
			wantStatus(t, err, 403, "write concur/rotate")
		})
	}
	// Root still sees a healthy engine: the denied requests changed nothing.
	if st := readConfig(t, root, mountPath)["status"]; st != "ok" {
		t.Errorf("config status after policy checks = %v, want ok", st)
	}
}
