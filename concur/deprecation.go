package concur

import (
	"net/http"
	"strings"
)

// Response headers with which Concur marks a deprecated API (API release
// notes of 2026-03-03).
const (
	headerAPIWarn = "X-Api-Warn"
	headerSunset  = "Sunset"
)

// DeprecationNotice is what one Concur response said about the API's
// deprecation. Values are cleaned of control characters and bounded in
// length; they are Concur's text, never a credential.
type DeprecationNotice struct {
	Op      string // the call, as in Error.Op: "refresh grant", "get user", ...
	Path    string // the request path, without query
	Warning string // the x-api-warn header, "" when absent
	Sunset  string // the sunset header (an HTTP date, as Concur sent it), "" when absent
}

// noteDeprecation calls Options.OnDeprecation once for a response that
// carries either header.
func (c *Client) noteDeprecation(r *request, h http.Header) {
	if c.onDeprecation == nil {
		return
	}
	n := DeprecationNotice{
		Op:      r.op,
		Path:    cleanText(r.url.Path),
		Warning: cleanText(strings.Join(h.Values(headerAPIWarn), "; ")),
		Sunset:  cleanText(strings.Join(h.Values(headerSunset), "; ")),
	}
	if n.Warning == "" && n.Sunset == "" {
		return
	}
	c.onDeprecation(n)
}
