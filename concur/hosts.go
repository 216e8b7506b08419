package concur

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// HostAllowList says where credentials may be sent. Pattern grammar:
// scheme://host[:port], scheme https or http; host may begin with "*."
// (one or more labels, never the bare domain); port "*" means any port, no
// port means the scheme's default port only. Matching is case-insensitive.
type HostAllowList struct {
	patterns []hostPattern
}

type hostPattern struct {
	raw      string
	scheme   string
	host     string // lower case; for a wildcard, the domain after "*."
	wildcard bool
	anyPort  bool
	port     string // "" means the scheme's default port
}

// ParseAllowedHosts parses allow-list patterns; an empty list allows nothing.
func ParseAllowedHosts(patterns []string) (*HostAllowList, error) {
	l := &HostAllowList{}
	for _, raw := range patterns {
		p, err := parseHostPattern(raw)
		if err != nil {
			return nil, fmt.Errorf("concur: allowed host %q: %w", raw, err)
		}
		l.patterns = append(l.patterns, p)
	}
	return l, nil
}

// Patterns returns the patterns in their normalised form.
func (l *HostAllowList) Patterns() []string {
	out := make([]string, len(l.patterns))
	for i, p := range l.patterns {
		out[i] = p.raw
	}
	return out
}

func parseHostPattern(raw string) (hostPattern, error) {
	s := strings.TrimSpace(raw)
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return hostPattern{}, errors.New("want scheme://host[:port]")
	}
	p := hostPattern{scheme: strings.ToLower(scheme)}
	if p.scheme != "https" && p.scheme != "http" {
		return hostPattern{}, errors.New("scheme must be https or http")
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return hostPattern{}, errors.New("no host")
	}
	if strings.ContainsAny(rest, "/?#@\\ \t") {
		return hostPattern{}, errors.New("only scheme://host[:port] is allowed (no path, query, fragment or userinfo)")
	}
	host, port, err := splitPatternHostPort(rest)
	if err != nil {
		return hostPattern{}, err
	}
	switch port {
	case "":
	case "*":
		p.anyPort = true
	default:
		if !validPort(port) {
			return hostPattern{}, fmt.Errorf("bad port %q", port)
		}
		if port != defaultPort(p.scheme) {
			p.port = port
		}
	}
	host = strings.ToLower(host)
	if suffix, ok := strings.CutPrefix(host, "*."); ok {
		if !validDNSName(suffix) || !strings.Contains(suffix, ".") {
			return hostPattern{}, errors.New(`"*." must be followed by a domain of at least two labels`)
		}
		p.wildcard, p.host = true, suffix
	} else {
		if !validHost(host) {
			return hostPattern{}, fmt.Errorf("bad host %q", host)
		}
		p.host = host
	}
	p.raw = p.String()
	return p, nil
}

func (p hostPattern) String() string {
	h := p.host
	if p.wildcard {
		h = "*." + h
	} else if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	switch {
	case p.anyPort:
		h += ":*"
	case p.port != "":
		h += ":" + p.port
	}
	return p.scheme + "://" + h
}

// splitPatternHostPort splits host[:port] where port may be "*", which
// net.SplitHostPort and url.Parse both refuse.
func splitPatternHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", "", errors.New("unclosed [ in host")
		}
		host, rest := s[1:end], s[end+1:]
		if rest == "" {
			return host, "", nil
		}
		if !strings.HasPrefix(rest, ":") || rest == ":" {
			return "", "", errors.New("bad port")
		}
		return host, rest[1:], nil
	}
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort && (port == "" || strings.Contains(port, ":")) {
		return "", "", errors.New("bad port (an IPv6 address needs [brackets])")
	}
	return host, port, nil
}

// Check returns nil when rawURL's scheme, host and port match a pattern. It
// rejects userinfo (https://x.concursolutions.com@evil.com), non-http(s)
// schemes, empty hosts and host names with characters DNS does not allow.
func (l *HostAllowList) Check(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return errors.New("concur: not a valid URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return fmt.Errorf("concur: scheme %q is not http or https", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return errors.New("concur: URL has no host")
	}
	if u.User != nil {
		return errors.New("concur: URL carries userinfo")
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == defaultPort(scheme) {
		port = ""
	}
	if !validHost(host) || (port != "" && !validPort(port)) {
		return fmt.Errorf("concur: host %q is not a valid host name", u.Host)
	}
	for _, p := range l.patterns {
		if p.matches(scheme, host, port) {
			return nil
		}
	}
	return fmt.Errorf("concur: host %s://%s is not in the allowed hosts %v", scheme, strings.ToLower(u.Host), l.Patterns())
}

func (p hostPattern) matches(scheme, host, port string) bool {
	if scheme != p.scheme {
		return false
	}
	if !p.anyPort && port != p.port {
		return false
	}
	if p.wildcard {
		// IP literals never match a domain wildcard.
		return net.ParseIP(host) == nil && strings.HasSuffix(host, "."+p.host)
	}
	if ip := net.ParseIP(host); ip != nil {
		pip := net.ParseIP(p.host)
		return pip != nil && ip.Equal(pip)
	}
	return host == p.host
}

// NormalizeBaseURL turns a base URL or a geolocation value into
// scheme://host[:port]: it trims spaces, lower-cases scheme and host, drops a
// default port and anything after the host (such as /oauth2/v0/token). It
// fails when raw is not an absolute http(s) URL with a host, or has userinfo.
func NormalizeBaseURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", errors.New("concur: base URL is not a valid URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", errors.New("concur: base URL must be an absolute http or https URL")
	}
	if u.Opaque != "" || u.Host == "" {
		return "", errors.New("concur: base URL has no host")
	}
	if u.User != nil {
		return "", errors.New("concur: base URL must not carry userinfo")
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if !validHost(host) || (port != "" && !validPort(port)) {
		return "", fmt.Errorf("concur: base URL host %q is not valid", u.Host)
	}
	if port == defaultPort(scheme) {
		port = ""
	}
	hostport := host
	if port != "" {
		hostport = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	return (&url.URL{Scheme: scheme, Host: hostport}).String(), nil
}

func defaultPort(scheme string) string {
	if scheme == "http" {
		return "80"
	}
	return "443"
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n <= 65535 && p[0] != '0' && p[0] != '+'
}

// validHost accepts an IP literal or a DNS name.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return !strings.Contains(h, "%") // no IPv6 zones
	}
	return validDNSName(h)
}

// validDNSName accepts lower-case LDH labels of 1-63 characters; a name that
// is all digits in its last label would be an IP in disguise and is refused.
func validDNSName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	for _, lab := range labels {
		if lab == "" || len(lab) > 63 || lab[0] == '-' || lab[len(lab)-1] == '-' {
			return false
		}
		for i := 0; i < len(lab); i++ {
			c := lab[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}
