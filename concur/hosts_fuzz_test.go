package concur

import (
	"net"
	"net/url"
	"strings"
	"testing"
)

// NormalizeBaseURL is applied to every base_url an operator writes and every
// geolocation Concur returns. Whatever it accepts is scheme://host[:port]
// over http(s), without userinfo, and normalising it again changes nothing.
func FuzzNormalizeBaseURL(f *testing.F) {
	for _, s := range []string{
		"https://us2.api.concursolutions.com", " HTTPS://US2.api.ConcurSolutions.com:443/oauth2/v0/token ",
		"https://x.concursolutions.com@evil.com", "https://evil.com#.concursolutions.com", "http://[::1]:8080/x",
		"https://[fe80::1%25eth0]", "https://2852039166", "https://0xA9FEA9FE", "//host", "file:///etc/passwd",
		"https://us.api.concursolutions.com.", "https://us.api.c\u043encursolutions.com", "http://127.0.0.1:0", "https://h:65536",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := NormalizeBaseURL(raw)
		if err != nil {
			if out != "" {
				t.Fatalf("error and a value: %q %v", out, err)
			}
			return
		}
		again, err := NormalizeBaseURL(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", raw, out, again, err)
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("%q does not parse: %v", out, err)
		}
		if (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			t.Fatalf("%q normalised to %q, which is not scheme://host[:port]", raw, out)
		}
		if h := u.Hostname(); h != strings.ToLower(h) || strings.Contains(h, "%") {
			t.Fatalf("host %q is not lower case or carries a zone", h)
		}
		if p := u.Port(); p == "0" || (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") {
			t.Fatalf("port %q kept in %q", p, out)
		}
	})
}

// The allow-list: a pattern that parses prints back to itself, and a URL it
// admits is one the pattern describes (same scheme, no userinfo, the host
// itself or, for "*.", a subdomain that is not an IP literal), whatever
// path the URL had.
func FuzzAllowList(f *testing.F) {
	for _, s := range [][2]string{
		{"https://*.concursolutions.com", "https://us2.api.concursolutions.com/oauth2/v0/token"},
		{"https://*.concursolutions.com", "https://concursolutions.com"},
		{"https://*.concursolutions.com", "https://us.api.concursolutions.com@evil.com"},
		{"https://*.concursolutions.com", "https://evil.com#.concursolutions.com"},
		{"http://127.0.0.1:*", "http://127.0.0.1:8200"},
		{"http://127.0.0.1:*", "http://[::ffff:127.0.0.1]:1"},
		{"http://127.0.0.1:*", "http://2130706433:1"},
		{"https://*", "https://a.b"},
		{"https://[::1]:8443", "https://[::1]:8443/x"},
		{"https://API.example.com:443/", "https://api.example.com"},
		{"https://*.com", "https://evil.com"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, raw string) {
		l, err := ParseAllowedHosts([]string{pattern})
		if err != nil {
			return
		}
		printed := l.Patterns()[0]
		l2, err := ParseAllowedHosts([]string{printed})
		if err != nil || l2.Patterns()[0] != printed {
			t.Fatalf("pattern %q prints as %q, which does not parse back to itself (%v)", pattern, printed, err)
		}
		if l.Check(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.User != nil || u.Host == "" {
			t.Fatalf("%q admitted by %q although it has no host or has userinfo", raw, printed)
		}
		scheme, rest, _ := strings.Cut(printed, "://")
		if !strings.EqualFold(u.Scheme, scheme) {
			t.Fatalf("%q admitted by %q with another scheme", raw, printed)
		}
		host := strings.ToLower(u.Hostname())
		phost := rest
		if i := strings.LastIndex(phost, ":"); i >= 0 && !strings.HasSuffix(phost, "]") {
			phost = phost[:i]
		}
		phost = strings.Trim(phost, "[]")
		if suffix, ok := strings.CutPrefix(phost, "*."); ok {
			if net.ParseIP(host) != nil || !strings.HasSuffix(host, "."+suffix) {
				t.Fatalf("%q admitted by wildcard %q", raw, printed)
			}
		} else if ip := net.ParseIP(host); ip != nil {
			if !ip.Equal(net.ParseIP(phost)) {
				t.Fatalf("%q admitted by %q", raw, printed)
			}
		} else if host != phost {
			t.Fatalf("%q admitted by %q", raw, printed)
		}
		// The verdict is about the host: the normalised base URL is admitted too.
		norm, err := NormalizeBaseURL(raw)
		if err != nil {
			t.Fatalf("%q admitted by %q but does not normalise: %v", raw, printed, err)
		}
		if err := l.Check(norm); err != nil {
			t.Fatalf("%q admitted but its normalised form %q is not: %v", raw, norm, err)
		}
	})
}
