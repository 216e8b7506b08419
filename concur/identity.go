package concur

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const (
	identityUsersPath = "/profile/identity/v4/Users"
	connectionsPath   = "/app-mgmt/v0/connections"
	maxUserCount      = 100 // Identity v4 page-size limit
)

// RevokeConnection revokes every refresh token of the token's principal for
// this app: DELETE {baseURL}/app-mgmt/v0/connections with the bearer token.
func (c *Client) RevokeConnection(ctx context.Context, baseURL string, accessToken Secret) error {
	op := opRevoke
	u, err := c.apiURL(op, baseURL, accessToken, connectionsPath)
	if err != nil {
		return err
	}
	return c.do(ctx, c.bearerRequest(op, http.MethodDelete, u, accessToken, func(http.Header, []byte) error { return nil }))
}

// GetUser reads one Identity v4 user; id must be a UUID.
func (c *Client) GetUser(ctx context.Context, baseURL string, accessToken Secret, id string, q UserQuery) (map[string]any, error) {
	op := opGetUser
	if err := ValidateUserID(id); err != nil {
		return nil, &Error{Op: op, Class: ClassInvalidRequest, Err: err}
	}
	u, err := c.apiURL(op, baseURL, accessToken, identityUsersPath+"/"+id)
	if err != nil {
		return nil, err
	}
	// Set RawPath too, so the id is escaped even if validation ever loosens.
	u.RawPath = identityUsersPath + "/" + url.PathEscape(id)
	v := url.Values{}
	addList(v, "attributes", q.Attributes)
	addList(v, "excludedAttributes", q.ExcludedAttributes)
	u.RawQuery = v.Encode()

	var user map[string]any
	err = c.do(ctx, c.bearerRequest(op, http.MethodGet, u, accessToken, func(_ http.Header, b []byte) error {
		if err := json.Unmarshal(b, &user); err != nil || user == nil {
			return errors.New("malformed user response (not a JSON object)")
		}
		return nil
	}))
	if err != nil {
		return nil, err
	}
	return user, nil
}

// FindUsers lists Identity v4 users matching `<attribute> eq "<value>"`.
func (c *Client) FindUsers(ctx context.Context, baseURL string, accessToken Secret, f UserFilter) (*UserList, error) {
	op := opFindUsers
	filter, err := buildUserFilter(f)
	if err != nil {
		return nil, &Error{Op: op, Class: ClassInvalidRequest, Err: err}
	}
	u, err := c.apiURL(op, baseURL, accessToken, identityUsersPath)
	if err != nil {
		return nil, err
	}
	v := url.Values{"filter": {filter}}
	if f.Count != 0 {
		v.Set("count", strconv.Itoa(f.Count))
	}
	if f.StartIndex != 0 {
		v.Set("startIndex", strconv.Itoa(f.StartIndex))
	}
	addList(v, "attributes", f.Attributes)
	addList(v, "excludedAttributes", f.ExcludedAttributes)
	u.RawQuery = v.Encode()

	var list *UserList
	err = c.do(ctx, c.bearerRequest(op, http.MethodGet, u, accessToken, func(_ http.Header, b []byte) error {
		var l UserList
		if err := json.Unmarshal(b, &l); err != nil {
			return errors.New("malformed user list response")
		}
		list = &l
		return nil
	}))
	if err != nil {
		return nil, err
	}
	return list, nil
}

func (c *Client) apiURL(op, baseURL string, accessToken Secret, path string) (*url.URL, error) {
	if accessToken.IsZero() {
		return nil, &Error{Op: op, Class: ClassPermanent, Err: errors.New("no access token")}
	}
	base, err := c.checkBase(op, baseURL)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, &Error{Op: op, Class: ClassPermanent, Err: errors.New("bad base URL")}
	}
	u.Path = path
	return u, nil
}

func (c *Client) bearerRequest(op, method string, u *url.URL, accessToken Secret, onSuccess func(http.Header, []byte) error) *request {
	return &request{
		op:     op,
		method: method,
		url:    u,
		header: http.Header{
			"Authorization": {"Bearer " + accessToken.Reveal()},
			"Accept":        {"application/json"},
		},
		secrets:     []Secret{accessToken},
		decodeError: decodeSCIMError,
		onSuccess:   onSuccess,
	}
}

func addList(v url.Values, key string, items []string) {
	var kept []string
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			kept = append(kept, it)
		}
	}
	if len(kept) > 0 {
		v.Set(key, strings.Join(kept, ","))
	}
}

// buildUserFilter checks f and renders its SCIM filter expression.
func buildUserFilter(f UserFilter) (string, error) {
	switch f.Attribute {
	case FilterUserName, FilterEmployeeNumber, FilterExternalID:
	default:
		return "", fmt.Errorf("filter attribute %q is not one of %s, %s, %s",
			cleanText(f.Attribute), FilterUserName, FilterEmployeeNumber, FilterExternalID)
	}
	if f.Value == "" {
		return "", errors.New("filter value is empty")
	}
	if f.Count < 0 || f.Count > maxUserCount {
		return "", fmt.Errorf("count %d is outside 1..%d", f.Count, maxUserCount)
	}
	if f.StartIndex < 0 {
		return "", fmt.Errorf("startIndex %d is below 1", f.StartIndex)
	}
	return f.Attribute + ` eq "` + escapeSCIMString(f.Value) + `"`, nil
}

// escapeSCIMString escapes a SCIM filter comparison value, which is a JSON
// string (RFC 7644 3.4.2.2): backslash, double quote and control characters.
func escapeSCIMString(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ValidateUserID accepts a canonical 8-4-4-4-12 hexadecimal UUID, so that
// nothing else (../, ?x=, %2f) ever reaches a URL path.
func ValidateUserID(id string) error {
	if len(id) != 36 {
		return fmt.Errorf("user id %q is not a UUID (want 36 characters in the form 8-4-4-4-12, got %d)", shorten(id), len(id))
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		switch i {
		case 8, 13, 18, 23:
			if ch != '-' {
				return fmt.Errorf("user id %q is not a UUID (want '-' at position %d)", shorten(id), i+1)
			}
		default:
			if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f' || ch >= 'A' && ch <= 'F') {
				return fmt.Errorf("user id %q is not a UUID (non-hexadecimal character at position %d)", shorten(id), i+1)
			}
		}
	}
	return nil
}

func shorten(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return cleanText(s)
}
