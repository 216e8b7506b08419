package backend

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

// Hostile input: every value a caller (or Concur itself) can put in front of
// the engine that could send a credential somewhere else, reach another
// Concur path, widen a filter or exhaust memory. Inputs from callers are
// refused with a 400 naming the field before anything is sent; hosts named
// by Concur (geolocation, code 16, HTTP redirects) are never contacted
// unless allowed_hosts allows them. Complements TestConfigBadInputNamesTheField
// and TestProfileBadInputNamesTheField (not repeated here).

// hx is one hostile case's world.
type hx struct {
	*testEnv
	t    *caseT
	evil *elsewhere
	door *frontDoor
	rec  *reliabilityRecord
}

func (h *hx) req(op logical.Operation, path string, data map[string]any) outcome {
	resp, err := h.b.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: path, Data: data, Storage: h.storage})
	return outcomeOf(resp, err)
}

type hostileCase struct {
	name, op, input string
	setup           hostileSetup
	run             func(h *hx)
	skip            string // product bug awaiting a fix
}

type hostileSetup struct {
	bootstrap bool
	door      bool   // base_url is a front door in front of the simulator
	geo       string // the simulator names this geolocation; "evil" means the elsewhere server
	loopback  bool   // allowed_hosts is the loopback list of the test env (default: Concur's default list)
}

const evilHost = "evil"

func hostileCaseNames() []string {
	cs := hostileCases()
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

// refused asserts a 400 that names field, and that nothing reached Concur.
func (h *hx) refused(o outcome, field string, tokenCalls, userCalls int) {
	h.rec.Caller = "400 naming " + field
	// The message starts with the field ("base_url: ..."), or is Vault's own
	// conversion error quoting it (Field validation failed: ... field "count" ...).
	named := strings.HasPrefix(o.msg, field) || strings.Contains(o.msg, `field "`+field+`"`) ||
		strings.HasPrefix(o.msg, "unknown fields: ") && strings.Contains(o.msg, field)
	if o.code != 400 || !named {
		h.t.Errorf("got %v %q, want a 400 naming %q", o, o.msg, field)
		h.rec.Caller = o.String()
	}
	if n := h.sim.Calls(concurtest.EndpointToken); n != tokenCalls {
		h.t.Errorf("%d token-endpoint calls, want %d", n, tokenCalls)
	}
	if n := h.sim.Calls(concurtest.EndpointUsers); n != userCalls {
		h.t.Errorf("%d Identity calls, want %d", n, userCalls)
	}
	if n := h.evil.hits.Load(); n != 0 {
		h.t.Errorf("%d requests reached the other host", n)
	}
}

// configRefused: a first config write carrying the hostile value is refused
// by name; nothing is sent or stored.
func configRefused(name, input string, loopback bool, edit func(h *hx, d map[string]any), field string) hostileCase {
	return hostileCase{name: name, op: "config write", input: input, setup: hostileSetup{loopback: loopback},
		run: func(h *hx) {
			d := h.baseConfig()
			if !loopback {
				delete(d, "allowed_hosts")
				delete(d, "base_url")
			}
			if loopback {
				// Only the simulator could be reached; against Concur's
				// default list a wrongly accepted write must not go out.
				d["request_token"] = h.sim.NewRequestToken(testClientID, testCompany)
			}
			edit(h, d)
			h.refused(h.req(logical.CreateOperation, "config", d), field, 0, 0)
			if raw, _ := h.storage.Get(context.Background(), defaultCompanyKey); raw != nil {
				h.t.Errorf("something was stored")
			}
			h.rec.Token = "nothing sent, nothing stored"
		}}
}

func setField(field string, v any) func(*hx, map[string]any) {
	return func(_ *hx, d map[string]any) { d[field] = v }
}

func baseURL(v string) func(*hx, map[string]any) { return setField("base_url", v) }

func allowedHosts(v string) func(*hx, map[string]any) {
	return func(_ *hx, d map[string]any) { d["allowed_hosts"] = v; delete(d, "base_url") }
}

// loopbackPort is the simulator's port, for base_url tricks that aim at it
// by another name.
func loopbackURL(h *hx, host string) string {
	u, _ := url.Parse(h.sim.URL)
	return "http://" + host + ":" + u.Port()
}

// readRefused: on a bootstrapped engine, a request carrying the hostile
// value is refused by name and the stored token is untouched.
func readRefused(name, op, input string, opn logical.Operation, path string, data func(h *hx) map[string]any, field string) hostileCase {
	return hostileCase{name: name, op: op, input: input, setup: hostileSetup{bootstrap: true, loopback: true},
		run: func(h *hx) {
			tokenCalls := h.sim.Calls(concurtest.EndpointToken)
			before := h.storedToken()
			var d map[string]any
			if data != nil {
				d = data(h)
			}
			h.refused(h.req(opn, path, d), field, tokenCalls, 0)
			if after := h.storedToken(); after != before {
				h.t.Errorf("the stored state changed")
			}
			h.rec.Token = "unchanged, nothing sent"
		}}
}

// kv is request data with one field.
func kv(field string, value any) func(*hx) map[string]any {
	return func(*hx) map[string]any { return map[string]any{field: value} }
}

func userSearch(extra map[string]any) func(*hx) map[string]any {
	return func(h *hx) map[string]any {
		d := map[string]any{"user_name": h.sim.Users(testCompany)[0].UserName}
		for k, v := range extra {
			d[k] = v
		}
		return d
	}
}

const aUser = "3df11695-e8bb-40ff-8e98-c85913ab2789"

// notAdopted: Concur names a geolocation allowed_hosts does not allow. The
// tokens are stored, the geolocation is not adopted, the engine says so,
// renewals keep going to the old host, and the named host hears nothing.
func notAdopted(name, input, geo string, allowed string, warn bool) hostileCase {
	return hostileCase{name: name, op: "bootstrap, rotate, creds, profile read", input: input,
		setup: hostileSetup{geo: geo, loopback: true},
		run: func(h *hx) {
			d := h.baseConfig()
			if allowed != "" {
				d["allowed_hosts"] = allowed
			}
			d["request_token"] = h.sim.NewRequestToken(testClientID, testCompany)
			o := h.req(logical.CreateOperation, "config", d)
			h.rec.Caller = o.String()
			if o.code != 200 {
				h.t.Errorf("bootstrap: %v %s, want the tokens stored", o, o.msg)
				return
			}
			if g := o.data["geolocation"]; g != h.sim.URL {
				h.t.Errorf("geolocation %v adopted, want %s kept", g, h.sim.URL)
			}
			if warn && (len(o.warnings) == 0 || !strings.Contains(o.warnings[0], "geolocation")) {
				h.t.Errorf("warnings %q do not say the geolocation was refused", o.warnings)
			}
			if st := h.storedToken(); st.RefreshToken != h.currentRefreshToken() || st.Geolocation != h.sim.URL {
				h.t.Errorf("stored geolocation %q, or the refresh token is not Concur's current one", st.Geolocation)
			}
			// Renewals and Identity reads keep going to the allowed host.
			h.clock.Advance(time.Minute)
			if o := h.req(logical.UpdateOperation, "rotate", nil); o.code != 200 || o.data["geolocation"] != h.sim.URL {
				h.t.Errorf("rotate: %v %s geolocation %v", o, o.msg, o.data["geolocation"])
			}
			if o := h.req(logical.ReadOperation, "creds", nil); o.code != 200 || o.data["geolocation"] != h.sim.URL {
				h.t.Errorf("creds: %v geolocation %v", o, o.data["geolocation"])
			}
			user := h.sim.Users(testCompany)[0]
			if o := h.req(logical.ReadOperation, "profile/"+user.ID, nil); o.code != 200 {
				h.t.Errorf("profile read: %v %s", o, o.msg)
			}
			if n := h.evil.hits.Load(); n != 0 {
				h.t.Errorf("%d requests reached the geolocation Concur named", n)
			}
			if n := h.sim.ErrorCount(108); n != 0 {
				h.t.Errorf("invalid_grant answers: %d", n)
			}
			h.rec.Caller = "200 + warning; geolocation not adopted"
			h.rec.Token = "stored; renewals stay on the allowed host"
			h.rec.Resumed = "n/a (service never stopped)"
		}}
}

// neverContacted: Concur (through the front door) points elsewhere with a
// code 16 or an HTTP redirect; the engine does not follow, the other host
// hears nothing, the stored token is untouched.
func neverContacted(
	name, op, input string,
	bootstrapFirst bool,
	path string,
	act func(h *hx) outcome,
	action func(h *hx) func(*frontDoor, http.ResponseWriter, *http.Request),
	wantCode int,
	says string,
) hostileCase {
	return hostileCase{name: name, op: op, input: input, setup: hostileSetup{door: true, bootstrap: bootstrapFirst, loopback: true},
		run: func(h *hx) {
			var before tokenEntry
			if bootstrapFirst {
				before = h.storedToken()
			}
			h.door.next(path, 10, action(h))
			o := act(h)
			h.rec.Caller = o.String()
			if o.code != wantCode || !strings.Contains(o.msg, says) {
				h.t.Errorf("got %v %q, want %d mentioning %q", o, o.msg, wantCode, says)
			}
			if n := h.evil.hits.Load(); n != 0 {
				h.t.Errorf("%d requests reached the other host", n)
			}
			if bootstrapFirst {
				after := h.storedToken()
				if after.RefreshToken != before.RefreshToken || !h.sim.RefreshTokenValid(after.RefreshToken) {
					h.t.Errorf("the stored refresh token changed or died")
				}
				h.rec.Token = "intact"
			} else {
				if raw, _ := h.storage.Get(context.Background(), defaultCompanyKey); raw != nil {
					h.t.Errorf("something was stored")
				}
				h.rec.Token = "nothing stored"
			}
			// Once Concur behaves, service resumes.
			h.door.clear()
			h.clock.Advance(time.Minute)
			h.rec.Resumed = "yes"
			if o := act(h); o.code != 200 && o.code != 204 {
				h.t.Errorf("after the redirects stopped: %v %s", o, o.msg)
				h.rec.Resumed = "no"
			}
		}}
}

func hostileCases() []hostileCase {
	big := strings.Repeat("a", maxFieldLength+1)
	huge := strings.Repeat("b", 100<<10)
	bootstrapVia := func(h *hx) outcome {
		d := h.baseConfig()
		d["base_url"] = h.door.URL
		d["request_token"] = h.sim.NewRequestToken(testClientID, testCompany)
		return h.req(logical.CreateOperation, "config", d)
	}
	rotate := func(h *hx) outcome { return h.req(logical.UpdateOperation, "rotate", nil) }
	profile := func(h *hx) outcome {
		return h.req(logical.ReadOperation, "profile/"+h.sim.Users(testCompany)[0].ID, nil)
	}
	revoke := func(h *hx) outcome {
		return h.req(logical.DeleteOperation, "config", map[string]any{"revoke": true})
	}
	to := func(status int) func(h *hx) func(*frontDoor, http.ResponseWriter, *http.Request) {
		return func(h *hx) func(*frontDoor, http.ResponseWriter, *http.Request) {
			return redirect(status, h.evil.URL+"/oauth2/v0/token")
		}
	}
	c16 := func(target func(h *hx) string) func(h *hx) func(*frontDoor, http.ResponseWriter, *http.Request) {
		return func(h *hx) func(*frontDoor, http.ResponseWriter, *http.Request) { return code16(target(h)) }
	}
	evilURL := func(h *hx) string { return h.evil.URL }

	cs := []hostileCase{
		// SSRF through base_url, against Concur's default allow-list.
		configRefused(
			"base_url/plain-http",
			"http://us.api.concursolutions.com",
			false,
			baseURL("http://us.api.concursolutions.com"),
			"base_url",
		),
		configRefused("base_url/other-domain", "https://api.example.com", false, baseURL("https://api.example.com"), "base_url"),
		configRefused("base_url/cloud-metadata-ip", "https://169.254.169.254", false, baseURL("https://169.254.169.254"), "base_url"),
		configRefused("base_url/ipv6-loopback", "https://[::1]", false, baseURL("https://[::1]"), "base_url"),
		configRefused("base_url/decimal-ip", "https://2852039166 (169.254.169.254)", false, baseURL("https://2852039166"), "base_url"),
		configRefused("base_url/hex-ip", "https://0xA9FEA9FE", false, baseURL("https://0xA9FEA9FE"), "base_url"),
		configRefused("base_url/octal-ip", "https://0251.0376.0251.0376", false, baseURL("https://0251.0376.0251.0376"), "base_url"),
		configRefused(
			"base_url/userinfo-password",
			"https://user:pw@us.api.concursolutions.com",
			false,
			baseURL("https://user:pw@us.api.concursolutions.com"),
			"base_url",
		),
		configRefused(
			"base_url/userinfo-reversed",
			"https://evil.example.com@us.api.concursolutions.com",
			false,
			baseURL("https://evil.example.com@us.api.concursolutions.com"),
			"base_url",
		),
		configRefused(
			"base_url/fragment-trick",
			"https://evil.example.com#.concursolutions.com",
			false,
			baseURL("https://evil.example.com#.concursolutions.com"),
			"base_url",
		),
		configRefused(
			"base_url/query-trick",
			"https://evil.example.com?.concursolutions.com",
			false,
			baseURL("https://evil.example.com?.concursolutions.com"),
			"base_url",
		),
		configRefused(
			"base_url/path-trick",
			"https://evil.example.com/.concursolutions.com",
			false,
			baseURL("https://evil.example.com/.concursolutions.com"),
			"base_url",
		),
		configRefused(
			"base_url/suffix-trick",
			"https://us.api.concursolutions.com.evil.example.com",
			false,
			baseURL("https://us.api.concursolutions.com.evil.example.com"),
			"base_url",
		),
		configRefused(
			"base_url/no-dot-boundary",
			"https://evilconcursolutions.com",
			false,
			baseURL("https://evilconcursolutions.com"),
			"base_url",
		),
		configRefused("base_url/bare-domain", "https://concursolutions.com", false, baseURL("https://concursolutions.com"), "base_url"),
		configRefused(
			"base_url/trailing-dot",
			"https://us.api.concursolutions.com.",
			false,
			baseURL("https://us.api.concursolutions.com."),
			"base_url",
		),
		configRefused(
			"base_url/idn-lookalike",
			"https://us.api.c\u043encursolutions.com (Cyrillic o)",
			false,
			baseURL("https://us.api.c\u043encursolutions.com"),
			"base_url",
		),
		configRefused(
			"base_url/punycode-lookalike",
			"https://us.api.xn--cncursolutions-5ve.com",
			false,
			baseURL("https://us.api.xn--cncursolutions-5ve.com"),
			"base_url",
		),
		configRefused(
			"base_url/other-port",
			"https://us.api.concursolutions.com:8443",
			false,
			baseURL("https://us.api.concursolutions.com:8443"),
			"base_url",
		),
		configRefused(
			"base_url/backslash-trick",
			`https://evil.example.com\.concursolutions.com`,
			false,
			baseURL(`https://evil.example.com\.concursolutions.com`),
			"base_url",
		),
		configRefused(
			"base_url/encoded-slash-trick",
			"https://evil.example.com%2f.concursolutions.com",
			false,
			baseURL("https://evil.example.com%2f.concursolutions.com"),
			"base_url",
		),
		configRefused("base_url/scheme-relative", "//us.api.concursolutions.com", false, baseURL("//us.api.concursolutions.com"), "base_url"),
		configRefused("base_url/file-scheme", "file:///etc/passwd", false, baseURL("file:///etc/passwd"), "base_url"),
		configRefused(
			"base_url/gopher-scheme",
			"gopher://us.api.concursolutions.com:70",
			false,
			baseURL("gopher://us.api.concursolutions.com:70"),
			"base_url",
		),
		configRefused(
			"base_url/nul-byte",
			`https://us.api.concursolutions.com\x00.evil.example.com`,
			false,
			baseURL("https://us.api.concursolutions.com\x00.evil.example.com"),
			"base_url",
		),
		configRefused(
			"base_url/crlf",
			`https://us.api.concursolutions.com\r\nHost: evil`,
			false,
			baseURL("https://us.api.concursolutions.com\r\nHost: evil"),
			"base_url",
		),
		configRefused(
			"base_url/oversized-host",
			"https:// + a 4097-character host",
			false,
			baseURL("https://"+big+".concursolutions.com"),
			"base_url",
		),
		{name: "base_url/oversized-path", op: "config write", input: "https://us.api.concursolutions.com/ + 100 KiB",
			run: configRefused("", "", false, baseURL("https://us.api.concursolutions.com/"+huge), "base_url").run},
		// base_url naming the simulator's own host under another name (loopback allow-list http://127.0.0.1:*).
		configRefused("base_url/localhost-name", "http://localhost:<port> with allowed_hosts http://127.0.0.1:*", true,
			func(h *hx, d map[string]any) { d["base_url"] = loopbackURL(h, "localhost") }, "base_url"),
		configRefused("base_url/short-ip-form", "http://127.1:<port>", true,
			func(h *hx, d map[string]any) { d["base_url"] = loopbackURL(h, "127.1") }, "base_url"),
		configRefused("base_url/decimal-loopback", "http://2130706433:<port>", true,
			func(h *hx, d map[string]any) { d["base_url"] = loopbackURL(h, "2130706433") }, "base_url"),
		configRefused("base_url/ipv6-zone", "http://[fe80::1%25eth0]:80", true, baseURL("http://[fe80::1%25eth0]:80"), "base_url"),

		// allowed_hosts abuse.
		configRefused("allowed_hosts/bare-wildcard", "https://*", false, allowedHosts("https://*"), "allowed_hosts"),
		configRefused("allowed_hosts/tld-wildcard", "https://*.com", false, allowedHosts("https://*.com"), "allowed_hosts"),
		configRefused(
			"allowed_hosts/double-wildcard",
			"https://*.*.concursolutions.com",
			false,
			allowedHosts("https://*.*.concursolutions.com"),
			"allowed_hosts",
		),
		configRefused(
			"allowed_hosts/inner-wildcard",
			"https://us.*.concursolutions.com",
			false,
			allowedHosts("https://us.*.concursolutions.com"),
			"allowed_hosts",
		),
		configRefused(
			"allowed_hosts/userinfo",
			"https://user@us.api.concursolutions.com",
			false,
			allowedHosts("https://user@us.api.concursolutions.com"),
			"allowed_hosts",
		),
		configRefused(
			"allowed_hosts/query",
			"https://*.concursolutions.com?x=1",
			false,
			allowedHosts("https://*.concursolutions.com?x=1"),
			"allowed_hosts",
		),
		configRefused(
			"allowed_hosts/fragment",
			"https://*.concursolutions.com#x",
			false,
			allowedHosts("https://*.concursolutions.com#x"),
			"allowed_hosts",
		),
		configRefused("allowed_hosts/no-scheme", "*.concursolutions.com", false, allowedHosts("*.concursolutions.com"), "allowed_hosts"),
		configRefused(
			"allowed_hosts/other-scheme",
			"ftp://*.concursolutions.com",
			false,
			allowedHosts("ftp://*.concursolutions.com"),
			"allowed_hosts",
		),
		configRefused("allowed_hosts/decimal-ip", "https://2852039166", false, allowedHosts("https://2852039166"), "allowed_hosts"),
		configRefused(
			"allowed_hosts/port-out-of-range",
			"https://*.concursolutions.com:99999",
			false,
			allowedHosts("https://*.concursolutions.com:99999"),
			"allowed_hosts",
		),
		configRefused(
			"allowed_hosts/port-zero",
			"https://*.concursolutions.com:0",
			false,
			allowedHosts("https://*.concursolutions.com:0"),
			"allowed_hosts",
		),
		configRefused(
			"allowed_hosts/idn",
			"https://*.c\u043encursolutions.com",
			false,
			allowedHosts("https://*.c\u043encursolutions.com"),
			"allowed_hosts",
		),
		configRefused("allowed_hosts/only-commas", `" , ,"`, false, allowedHosts(" , ,"), "allowed_hosts"),
		configRefused(
			"allowed_hosts/oversized-pattern",
			"one 4097-character pattern",
			false,
			allowedHosts("https://*."+big+".com"),
			"allowed_hosts",
		),
		{name: "allowed_hosts/oversized-list", op: "config write", input: "5000 valid patterns (about 170 KiB)",
			run: configRefused("", "", false, func(_ *hx, d map[string]any) {
				var b strings.Builder
				b.WriteString("https://*.concursolutions.com")
				for i := range 5000 {
					b.WriteByte(',')
					b.WriteString("https://h" + strings.Repeat("x", 8) + string(rune('a'+i%26)) + ".concursolutions.com")
				}
				d["allowed_hosts"] = b.String()
				delete(d, "base_url")
			}, "allowed_hosts").run},
		{
			name:  "allowed_hosts/excludes-current-geolocation",
			op:    "config write (update)",
			input: "narrowing allowed_hosts so the stored geolocation falls outside",
			setup: hostileSetup{bootstrap: true, loopback: true},
			run: func(h *hx) {
				calls := h.sim.Calls(concurtest.EndpointToken)
				before := h.storedToken()
				h.refused(
					h.req(
						logical.UpdateOperation,
						"config",
						map[string]any{"allowed_hosts": "https://*.concursolutions.com", "base_url": "https://us.api.concursolutions.com"},
					),
					"allowed_hosts",
					calls,
					0,
				)
				if h.storedToken() != before {
					h.t.Errorf("the stored state changed")
				}
				h.rec.Token = "unchanged"
			},
		},

		// Oversized values for every other field.
		configRefused("oversized/client_id", "4097 characters", true, setField("client_id", big), "client_id"),
		configRefused("oversized/client_secret", "4097 characters", true, setField("client_secret", big), "client_secret"),
		configRefused("oversized/company_uuid", "4097 characters", true, setField("company_uuid", big), "company_uuid"),
		configRefused("oversized/request_token", "4097 characters", true, setField("request_token", big), "request_token"),
		configRefused(
			"oversized/refresh_margin",
			"100 KiB of digits",
			true,
			setField("refresh_margin", strings.Repeat("9", 100<<10)),
			"refresh_margin",
		),
		readRefused(
			"oversized/min_ttl",
			"creds",
			"100 KiB of digits",
			logical.ReadOperation,
			"creds",
			kv("min_ttl", strings.Repeat("9", 100<<10)),
			"min_ttl",
		),
		readRefused("oversized/profile-id", "profile read", "a 100 KiB id", logical.ReadOperation, "profile/"+huge, nil, "id"),
		readRefused(
			"oversized/user_name",
			"profile search",
			"257 characters",
			logical.ReadOperation,
			"profile",
			kv("user_name", strings.Repeat("u", 257)),
			"user_name",
		),
		readRefused(
			"oversized/employee_number",
			"profile search",
			"100 KiB",
			logical.ReadOperation,
			"profile",
			kv("employee_number", huge),
			"employee_number",
		),
		readRefused(
			"oversized/external_id",
			"profile search",
			"100 KiB",
			logical.ReadOperation,
			"profile",
			kv("external_id", huge),
			"external_id",
		),
		readRefused(
			"oversized/count",
			"profile search",
			"count=99999999999999999999",
			logical.ReadOperation,
			"profile",
			userSearch(map[string]any{"count": "99999999999999999999"}),
			"count",
		),
		readRefused(
			"oversized/start_index",
			"profile search",
			"start_index=99999999999999999999",
			logical.ReadOperation,
			"profile",
			userSearch(map[string]any{"start_index": "99999999999999999999"}),
			"start_index",
		),
		readRefused("oversized/attributes", "profile read", "100 KiB of attribute names", logical.ReadOperation, "profile/"+aUser,
			func(*hx) map[string]any { return map[string]any{"attributes": huge} }, "attributes"),
		readRefused("oversized/excluded_attributes", "profile search", "100 KiB of attribute names", logical.ReadOperation, "profile",
			userSearch(map[string]any{"excluded_attributes": huge}), "excluded_attributes"),

		// Path traversal and query injection in profile ids and filters.
		readRefused(
			"profile-id/encoded-traversal",
			"profile read",
			"..%2F..%2Foauth2%2Fv0%2Ftoken",
			logical.ReadOperation,
			"profile/..%2F..%2Foauth2%2Fv0%2Ftoken",
			nil,
			"id",
		),
		readRefused(
			"profile-id/uuid-then-traversal",
			"profile read",
			"<uuid>/../../app-mgmt/v0/connections",
			logical.ReadOperation,
			"profile/"+aUser+"/../../app-mgmt/v0/connections",
			nil,
			"id",
		),
		readRefused(
			"profile-id/fullwidth-digits",
			"profile read",
			"UUID with a fullwidth digit",
			logical.ReadOperation,
			"profile/3df11695-e8bb-40ff-8e98-c85913ab278\uff19",
			nil,
			"id",
		),
		readRefused("profile-id/nul-byte", "profile read", "UUID followed by NUL", logical.ReadOperation, "profile/"+aUser+"\x00", nil, "id"),
		readRefused(
			"profile-id/query-injection",
			"profile read",
			"<uuid>&attributes=password",
			logical.ReadOperation,
			"profile/"+aUser+"&attributes=password",
			nil,
			"id",
		),
		readRefused("profile-id/fragment", "profile read", "<uuid>#x", logical.ReadOperation, "profile/"+aUser+"#x", nil, "id"),
		readRefused("profile-id/leading-space", "profile read", "' <uuid>'", logical.ReadOperation, "profile/ "+aUser, nil, "id"),
		readRefused(
			"filter/crlf-in-user_name",
			"profile search",
			`user_name with CR LF`,
			logical.ReadOperation,
			"profile",
			kv("user_name", "a\r\nb"),
			"user_name",
		),
		readRefused(
			"filter/nul-in-external_id",
			"profile search",
			`external_id with NUL`,
			logical.ReadOperation,
			"profile",
			kv("external_id", "ext\x00"),
			"external_id",
		),
		readRefused(
			"filter/attributes-query-injection",
			"profile search",
			"attributes=userName&filter=userName pr",
			logical.ReadOperation,
			"profile",
			userSearch(map[string]any{"attributes": `userName&filter=userName pr`}),
			"attributes",
		),
		{name: "filter/quote-injection-escaped", op: "profile search", input: `user_name = x" or userName pr "`,
			setup: hostileSetup{bootstrap: true, door: true, loopback: true},
			run: func(h *hx) {
				v := `x" or userName pr "`
				o := h.req(logical.ReadOperation, "profile", map[string]any{"user_name": v})
				h.rec.Caller = o.String()
				if o.code == 400 {
					if !strings.Contains(o.msg, "user_name") {
						h.t.Errorf("400 does not name user_name: %s", o.msg)
					}
					h.rec.Caller = "400 naming user_name"
					return
				}
				if o.code != 200 || len(o.data["users"].([]any)) != 0 {
					h.t.Errorf("got %v %v, want no user matched", o, o.data)
				}
				qs := h.door.seenQueries()
				if len(qs) != 1 {
					h.t.Errorf("%d Identity requests, want 1", len(qs))
					return
				}
				q, _ := url.ParseQuery(qs[0])
				if got, want := q.Get("filter"), `userName eq "x\" or userName pr \""`; got != want || len(q) != 1 {
					h.t.Errorf("Concur got filter %q (query %v), want exactly %q", got, q, want)
				}
				h.rec.Caller = "200, no user: sent as one escaped literal"
				h.rec.Token = "unchanged"
			}},
		{name: "filter/ampersand-injection-escaped", op: "profile search", input: "employee_number = 1&count=1000&filter=userName pr",
			setup: hostileSetup{bootstrap: true, door: true, loopback: true},
			run: func(h *hx) {
				o := h.req(logical.ReadOperation, "profile", map[string]any{"employee_number": "1&count=1000&filter=userName pr"})
				h.rec.Caller = o.String()
				qs := h.door.seenQueries()
				if o.code != 200 || len(qs) != 1 {
					h.t.Errorf("got %v, %d Identity requests", o, len(qs))
					return
				}
				q, _ := url.ParseQuery(qs[0])
				// employeeNumber goes with the configured company's companyId.
				if q.Get("companyId") != testCompany {
					h.t.Errorf("Concur got query %v, without companyId %s", q, testCompany)
				}
				q.Del("companyId")
				if len(q) != 1 || q.Get("filter") != `employeeNumber eq "1&count=1000&filter=userName pr"` {
					h.t.Errorf("Concur got query %v", q)
				}
				h.rec.Caller = "200, no user: sent as one escaped literal"
				h.rec.Token = "unchanged"
			}},

		// Unknown fields on every path, each named.
		configRefused("unknown/config-write-several", "refresh_tokn, baseurl, x", true,
			func(_ *hx, d map[string]any) { d["refresh_tokn"] = "x"; d["baseurl"] = "y"; d["x"] = 1 }, "unknown fields: baseurl, refresh_tokn, x"),
		readRefused(
			"unknown/config-read",
			"config read",
			"show_secrets=true",
			logical.ReadOperation,
			"config",
			kv("show_secrets", "true"),
			"show_secrets",
		),
		readRefused("unknown/config-delete", "config delete", "force=true", logical.DeleteOperation, "config", kv("force", "true"), "force"),
		readRefused("unknown/creds", "creds", "ttl=1, wrap=yes", logical.ReadOperation, "creds",
			func(*hx) map[string]any { return map[string]any{"ttl": 1, "wrap": "yes"} }, "unknown fields: ttl, wrap"),
		readRefused(
			"unknown/rotate-with-token",
			"rotate",
			"refresh_token=<value>",
			logical.UpdateOperation,
			"rotate",
			kv("refresh_token", "rt-x"),
			"refresh_token",
		),
		readRefused(
			"unknown/profile-read",
			"profile read",
			"filter=userName pr",
			logical.ReadOperation,
			"profile/"+aUser,
			kv("filter", "userName pr"),
			"filter",
		),
		readRefused(
			"unknown/profile-search-camelcase",
			"profile search",
			"startIndex=1 (camelCase)",
			logical.ReadOperation,
			"profile",
			userSearch(map[string]any{"startIndex": 1}),
			"startIndex",
		),

		// A geolocation Concur returns that allowed_hosts does not allow.
		notAdopted("geolocation/other-host", "Concur names http://localhost:<port> (not allowed)", evilHost, "", true),
		notAdopted("geolocation/cloud-metadata-ip", "Concur names https://169.254.169.254", "https://169.254.169.254", "", true),
		notAdopted("geolocation/plain-http-concur", "Concur names http://us2.api.concursolutions.com", "http://us2.api.concursolutions.com",
			"http://127.0.0.1:*,https://*.concursolutions.com", true),
		notAdopted(
			"geolocation/other-domain",
			"Concur names https://us2.api.concursolutions.com.evil.example.com",
			"https://us2.api.concursolutions.com.evil.example.com",
			"http://127.0.0.1:*,https://*.concursolutions.com",
			true,
		),
		notAdopted("geolocation/userinfo-trick", "Concur names http://127.0.0.1:1@localhost:<port>", "userinfo-evil", "", true),

		// Code 16 naming a disallowed host.
		neverContacted(
			"code16/disallowed-host-on-bootstrap",
			"config write request_token",
			"code 16 naming http://localhost:<port>",
			false,
			"/oauth2/",
			bootstrapVia,
			c16(evilURL),
			400,
			"localhost",
		),
		neverContacted("code16/disallowed-host-on-renewal", "rotate", "code 16 naming http://localhost:<port>", true, "/oauth2/", rotate,
			c16(evilURL), 502, "localhost"),
		neverContacted("code16/userinfo-trick", "rotate", "code 16 naming http://127.0.0.1:1@localhost:<port>", true, "/oauth2/", rotate,
			c16(func(h *hx) string { return strings.Replace(h.evil.URL, "http://", "http://127.0.0.1:1@", 1) }), 502, "geolocation"),
		neverContacted("code16/cloud-metadata", "rotate", "code 16 naming https://169.254.169.254", true, "/oauth2/", rotate,
			c16(func(*hx) string { return "https://169.254.169.254" }), 502, "refused"),

		// HTTP redirects from Concur to elsewhere: never followed.
		neverContacted(
			"redirect/302-on-bootstrap",
			"config write request_token",
			"302 to http://localhost:<port>",
			false,
			"/oauth2/",
			bootstrapVia,
			to(http.StatusFound),
			400,
			"redirect",
		),
		neverContacted(
			"redirect/307-on-renewal",
			"rotate",
			"307 (would replay the form with the secret) to http://localhost:<port>",
			true,
			"/oauth2/",
			rotate,
			to(http.StatusTemporaryRedirect),
			502,
			"redirect",
		),
		neverContacted(
			"redirect/308-on-identity",
			"profile read",
			"308 (would resend the bearer token) to http://localhost:<port>",
			true,
			"/profile/",
			profile,
			to(http.StatusPermanentRedirect),
			502,
			"redirect",
		),
		neverContacted("redirect/301-on-revoke", "config delete revoke=true", "301 to http://localhost:<port>", true, "/app-mgmt/", revoke,
			to(http.StatusMovedPermanently), 502, "redirect"),
	}
	return cs
}

func TestHostileInput(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range hostileCases() {
		if seen[c.name] {
			t.Fatalf("duplicate case %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runHostileCase(t, c)
		})
	}
}

func runHostileCase(t *testing.T, c hostileCase) {
	rec := recordCase(t, suiteHostile, c.name, c.op, c.input)
	rec.Resumed = "n/a"
	evil := newElsewhere(t)
	simOpts := concurtest.Options{Rotation: concurtest.RotationRotate, Users: 3}
	var door *frontDoor
	if c.setup.door {
		door = newFrontDoor(t)
		simOpts.Geolocation = door.URL
	}
	switch c.setup.geo {
	case "":
	case evilHost:
		simOpts.Geolocation = evil.URL
	case "userinfo-evil":
		simOpts.Geolocation = strings.Replace(evil.URL, "http://", "http://127.0.0.1:1@", 1)
	default:
		simOpts.Geolocation = c.setup.geo
	}
	e := newTestEnv(t, simOpts)
	ct := &caseT{}
	h := &hx{testEnv: e, t: ct, evil: evil, door: door, rec: rec}
	if door != nil {
		door.setTarget(e.sim.URL)
	}
	if c.setup.bootstrap {
		d := e.baseConfig()
		if door != nil {
			d["base_url"] = door.URL
		}
		d["request_token"] = e.sim.NewRequestToken(testClientID, testCompany)
		if o := h.req(logical.CreateOperation, "config", d); o.code != 200 {
			t.Fatalf("setup: bootstrap: %v %s", o, o.msg)
		}
		if door != nil {
			door.mu.Lock()
			door.queries = nil
			door.mu.Unlock()
		}
	}
	c.run(h)
	ct.verdict(t, c.skip, rec)
}
