package concur_test

import (
	"testing"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

func TestDefaultAllowList(t *testing.T) {
	l, err := concur.ParseAllowedHosts([]string{concur.DefaultAllowedHost})
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{
		"https://us2.api.concursolutions.com",
		"https://us2.api.concursolutions.com/oauth2/v0/token",
		"https://www-us2.api.concursolutions.com:443",
		"HTTPS://US2.API.CONCURSOLUTIONS.COM",
		"https://glz.api.concursolutions.com/profile/identity/v4/Users?filter=x",
	}
	for _, u := range allowed {
		if err := l.Check(u); err != nil {
			t.Errorf("Check(%q) = %v, want allowed", u, err)
		}
	}
	refused := []string{
		"http://us2.api.concursolutions.com",       // plain http
		"https://us2.api.concursolutions.com:8443", // other port
		"https://concursolutions.com",              // bare domain
		"https://example.com",                      // other domain
		"https://concursolutions.com.evil.com",     // suffix trick
		"https://us2.api.concursolutions.com.evil.com",
		"https://evilconcursolutions.com",             // no dot boundary
		"https://x.concursolutions.com@evil.com",      // userinfo trick
		"https://user:pw@us2.api.concursolutions.com", // any userinfo
		"https://127.0.0.1",                           // IP literals
		"https://[::1]",
		"https://us2.api.concursolutions.com.", // trailing dot
		"https://a..concursolutions.com",
		"ftp://us2.api.concursolutions.com",
		"us2.api.concursolutions.com",
		"//us2.api.concursolutions.com",
		"https:us2.api.concursolutions.com",
		"",
		"https://evil.com%2f.concursolutions.com",
		"https://evil.com\\.concursolutions.com",
	}
	for _, u := range refused {
		if err := l.Check(u); err == nil {
			t.Errorf("Check(%q) = nil, want refused", u)
		}
	}
}

func TestAllowListPatterns(t *testing.T) {
	l, err := concur.ParseAllowedHosts([]string{
		"http://127.0.0.1:*", "https://api.example.com:8443", "http://[::1]:9000", "https://*.Example.org/",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{
		"http://127.0.0.1:1234", "http://127.0.0.1", "https://API.example.com:8443/x", "http://[::1]:9000", "https://a.b.example.org",
	} {
		if err := l.Check(u); err != nil {
			t.Errorf("Check(%q) = %v", u, err)
		}
	}
	for _, u := range []string{
		"https://127.0.0.1:1234", "http://127.0.0.2:1", "https://api.example.com", "http://[::1]:9001", "https://example.org",
	} {
		if err := l.Check(u); err == nil {
			t.Errorf("Check(%q) = nil, want refused", u)
		}
	}
	if got := l.Patterns(); got[3] != "https://*.example.org" {
		t.Errorf("normalised pattern = %q", got[3])
	}
}

func TestParseAllowedHostsRejectsBadPatterns(t *testing.T) {
	for _, p := range []string{
		"*.concursolutions.com", "ftp://*.x.com", "https://", "https://*", "https://*.com",
		"https://x.com/path", "https://x.com?q", "https://u@x.com", "https://x.*.com", "https://x.com:0",
		"https://x.com:99999", "https://x.com:", "https://::1", "https://x.com#f", "https://*.1.2.3",
	} {
		if _, err := concur.ParseAllowedHosts([]string{p}); err == nil {
			t.Errorf("ParseAllowedHosts(%q) accepted", p)
		}
	}
	if _, err := concur.New(concur.Options{AllowedHosts: []string{"https://x.com/oauth2"}}); err == nil {
		t.Error("New accepted a bad pattern")
	}
}

func TestNormalizeBaseURL(t *testing.T) {
	good := map[string]string{
		"https://us2.api.concursolutions.com":                  "https://us2.api.concursolutions.com",
		"https://us.api.concursolutions.com ":                  "https://us.api.concursolutions.com",
		"  https://us.api.Concursolutions.com":                 "https://us.api.concursolutions.com",
		"HTTPS://US.API.CONCURSOLUTIONS.COM/":                  "https://us.api.concursolutions.com",
		"https://us.api.concursolutions.com/oauth2/v0/token":   "https://us.api.concursolutions.com",
		"https://us.api.concursolutions.com:443/x?y=z#f":       "https://us.api.concursolutions.com",
		"http://127.0.0.1:8080/":                               "http://127.0.0.1:8080",
		"http://[::1]:80":                                      "http://[::1]",
		"https://www-us2.api.concursolutions.com:8443/profile": "https://www-us2.api.concursolutions.com:8443",
	}
	for in, want := range good {
		got, err := concur.NormalizeBaseURL(in)
		if err != nil || got != want {
			t.Errorf("NormalizeBaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "us2.api.concursolutions.com", "ftp://x.com", "https://user:pw@x.com", "https://", "mailto:a@b.com",
		"https://x.com:abc", "https://bad_host.com", "/relative",
	} {
		if got, err := concur.NormalizeBaseURL(in); err == nil {
			t.Errorf("NormalizeBaseURL(%q) = %q, want error", in, got)
		}
	}
}

func TestValidateUserID(t *testing.T) {
	for _, id := range []string{"3df11695-e8bb-40ff-8e98-c85913ab2789", "3DF11695-E8BB-40FF-8E98-C85913AB2789"} {
		if err := concur.ValidateUserID(id); err != nil {
			t.Errorf("ValidateUserID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{
		"", "../../oauth2/v0/token", "3df11695-e8bb-40ff-8e98-c85913ab2789?x=", "3df11695-e8bb-40ff-8e98-c85913ab278",
		"3df11695e8bb40ff8e98c85913ab2789", "3df11695-e8bb-40ff-8e98-c85913ab278g", "3df11695-e8bb-40ff-8e98/c85913ab2789",
		"{3df11695-e8bb-40ff-8e98-c85913ab2789}", "3df11695-e8bb-40ff-8e98-c85913ab2789/../x", "%2e%2e%2f%2e%2e%2foauth2%2fv0%2ftoke",
	} {
		if err := concur.ValidateUserID(id); err == nil {
			t.Errorf("ValidateUserID(%q) accepted", id)
		}
	}
}
