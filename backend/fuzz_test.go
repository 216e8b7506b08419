package backend

import (
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Whatever a config write carries, the engine answers with success or a 400
// naming a field, never stores a base_url that allowed_hosts does not allow,
// and never panics.
func FuzzConfigWrite(f *testing.F) {
	f.Add(
		"0f5e3f3a",
		"secret",
		"aa076ada-80a9-4f57-8e98-9300b1c3171d",
		"https://us.api.concursolutions.com",
		"https://*.concursolutions.com",
		"10m",
	)
	f.Add(
		"id",
		"s",
		"AA076ADA-80A9-4F57-8E98-9300B1C3171D",
		" HTTPS://US2.api.ConcurSolutions.com/oauth2/v0/token ",
		"https://*.concursolutions.com",
		"600",
	)
	f.Add("id", "s", "aa076ada-80a9-4f57-8e98-9300b1c3171d", "https://x.concursolutions.com@evil.com", "https://*", "1h")
	f.Add("id", "s", "../../etc", "http://127.0.0.1:8200", "http://127.0.0.1:*", "-1")
	f.Add("id\x00", "s\n", "", "https://[::1]:443", "https://*.concursolutions.com:*", "")
	f.Fuzz(func(t *testing.T, clientID, secret, company, baseURL, allowed, margin string) {
		e := newTestEnv(t, concurtest.Options{Users: 1})
		data := map[string]any{
			"client_id": clientID, "client_secret": secret, "company_uuid": company,
			"base_url": baseURL, "allowed_hosts": allowed, "refresh_margin": margin,
		}
		resp, err := e.request(logical.CreateOperation, "config", data)
		if err != nil {
			t.Fatalf("error instead of a 400: %v", err)
		}
		if resp.IsError() {
			msg := resp.Error().Error()
			named := false
			fields := []string{"client_id", "client_secret", "company_uuid", "base_url", "allowed_hosts", "refresh_margin",
				"Field validation failed"}
			for _, f := range fields {
				named = named || strings.Contains(msg, f)
			}
			if !named {
				t.Fatalf("400 names no field: %q", msg)
			}
			return
		}
		st := e.b.app.current().entry
		allow, perr := concur.ParseAllowedHosts(st.AllowedHosts)
		if perr != nil {
			t.Fatalf("stored allowed_hosts do not parse: %v", perr)
		}
		if err := allow.Check(st.BaseURL); err != nil {
			t.Fatalf("stored base_url %q not allowed by %v", st.BaseURL, st.AllowedHosts)
		}
		if e.sim.Calls(concurtest.EndpointToken) != 0 {
			t.Fatalf("a write without a token called Concur")
		}
	})
}

// Any profile id either is refused with a 400 naming id, or reaches Concur
// as exactly one well-formed Identity v4 user path.
func FuzzProfileID(f *testing.F) {
	seeds := []string{"3df11695-e8bb-40ff-8e98-c85913ab2789", "../../oauth2/v0/token", "x?filter=a", "%2e%2e",
		"3DF11695-E8BB-40FF-8E98-C85913AB2789", "", "\u00e9"}
	for _, s := range seeds {
		f.Add(s)
	}
	e := newTestEnv(f, concurtest.Options{Users: 1})
	e.bootstrap()
	f.Fuzz(func(t *testing.T, id string) {
		before := e.sim.Calls(concurtest.EndpointUsers)
		resp, err := e.request(logical.ReadOperation, "profile/"+id, nil)
		called := e.sim.Calls(concurtest.EndpointUsers) - before
		if id == "" {
			// "profile/" is the list of all users, like Identity's /Users/.
			if err != nil || resp == nil || resp.Data["users"] == nil || called != 1 {
				t.Fatalf(`"profile/": got %v / %v after %d calls, want one page of users`, resp, err, called)
			}
			return
		}
		if concur.ValidateUserID(id) != nil {
			// Vault's router cannot match a newline in a path segment: refused before us.
			if errors.Is(err, logical.ErrUnsupportedPath) && strings.Contains(id, "\n") && called == 0 {
				return
			}
			if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "id") {
				t.Fatalf("id %q: got %v / %v, want a 400 naming id", id, resp, err)
			}
			if called != 0 {
				t.Fatalf("id %q reached Concur", id)
			}
			return
		}
		if called != 1 {
			t.Fatalf("valid id %q made %d Identity calls", id, called)
		}
		if err != nil && codeOf(err) != 404 {
			t.Fatalf("valid id %q: %v", id, err)
		}
	})
}

// Any search value reaches Concur as one filter (escaped), or is refused by name.
func FuzzProfileSearch(f *testing.F) {
	for _, s := range []string{"user0001@example.com", `a" or userName pr "`, `\`, "a&count=1000", strings.Repeat("x", 300)} {
		f.Add(s, 10, 1)
	}
	e := newTestEnv(f, concurtest.Options{Users: 3})
	e.bootstrap()
	f.Fuzz(func(t *testing.T, value string, count, start int) {
		resp, err := e.request(logical.ReadOperation, "profile", map[string]any{"user_name": value, "count": count, "start_index": start})
		if err != nil {
			if c := codeOf(err); c != 400 && c != 404 {
				t.Fatalf("user_name %q count %d start %d: %v", value, count, start, err)
			}
			return
		}
		if resp.IsError() {
			msg := resp.Error().Error()
			if !strings.Contains(msg, "user_name") && !strings.Contains(msg, "count") && !strings.Contains(msg, "start_index") {
				t.Fatalf("400 names no field: %q", msg)
			}
			return
		}
		// A quote or backslash in the value must not widen the filter.
		users := resp.Data["users"].([]any)
		for _, u := range users {
			if u.(map[string]any)["userName"] != value {
				t.Fatalf("user_name %q matched %v", value, u.(map[string]any)["userName"])
			}
		}
	})
}

func FuzzCredsMinTTL(f *testing.F) {
	for _, s := range []string{"0", "30m", "3300", "3301", "-1", "1e9", "9223372036854775807s", "abc"} {
		f.Add(s)
	}
	e := newTestEnv(f, concurtest.Options{Users: 1})
	e.bootstrap()
	f.Fuzz(func(t *testing.T, minTTL string) {
		resp, err := e.request(logical.ReadOperation, "creds", map[string]any{"min_ttl": minTTL})
		if err != nil {
			t.Fatalf("min_ttl %q: %v", minTTL, err)
		}
		if resp.IsError() {
			if !strings.Contains(resp.Error().Error(), "min_ttl") {
				t.Fatalf("400 does not name min_ttl: %v", resp.Error())
			}
			return
		}
		if lifeLeft(resp.Data, e.clock.Now()) <= 0 {
			t.Fatalf("served an expired token")
		}
	})
}
