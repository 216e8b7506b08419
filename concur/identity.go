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
	identityUsersPath    = "/profile/identity/v4/Users"
	identityUsersPathV41 = "/profile/identity/v4.1/Users"
	connectionsPath      = "/app-mgmt/v0/connections"
	maxUserCount         = 100  // Identity v4 page-size limit
	maxUserCountV41      = 1000 // Identity v4.1 page-size limit
	maxCursorLength      = 4096
	schemaSearchRequest  = "urn:ietf:params:scim:api:messages:concur:2.0:SearchRequest"
)

// Operation names of the Identity v4.1 calls, in *Error.Op.
const (
	opListUsers   = "list users"
	opSearchUsers = "search users"
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

// GetUser reads one Identity user (v4, or v4.1 when q.Version says so); id
// must be a UUID.
func (c *Client) GetUser(ctx context.Context, baseURL string, accessToken Secret, id string, q UserQuery) (map[string]any, error) {
	op := opGetUser
	if err := ValidateUserID(id); err != nil {
		return nil, &Error{Op: op, Class: ClassInvalidRequest, Err: err}
	}
	users := identityUsersPath
	switch q.Version {
	case "", IdentityV4:
	case IdentityV41:
		users = identityUsersPathV41
	default:
		return nil, &Error{Op: op, Class: ClassInvalidRequest, Err: fmt.Errorf("unknown Identity version %q", cleanText(q.Version))}
	}
	u, err := c.apiURL(op, baseURL, accessToken, users+"/"+id)
	if err != nil {
		return nil, err
	}
	// Set RawPath too, so the id is escaped even if validation ever loosens.
	u.RawPath = users + "/" + url.PathEscape(id)
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
	if f.CompanyID != "" {
		if err := ValidateUserID(f.CompanyID); err != nil {
			return nil, &Error{Op: op, Class: ClassInvalidRequest, Err: errors.New("companyId is not a UUID")}
		}
		v.Set("companyId", f.CompanyID)
	}
	addList(v, "attributes", f.Attributes)
	addList(v, "excludedAttributes", f.ExcludedAttributes)
	u.RawQuery = v.Encode()

	return c.userList(ctx, c.bearerRequest(op, http.MethodGet, u, accessToken, nil))
}

// ListUsers reads one page of the company's users from Identity v4.1
// (GET /profile/identity/v4.1/Users with count and cursor). Pass the
// returned NextCursor to get the next page; "" means this was the last.
func (c *Client) ListUsers(ctx context.Context, baseURL string, accessToken Secret, p UserPage) (*UserList, error) {
	op := opListUsers
	if err := checkPage(p.Count, p.Cursor); err != nil {
		return nil, &Error{Op: op, Class: ClassInvalidRequest, Err: err}
	}
	u, err := c.apiURL(op, baseURL, accessToken, identityUsersPathV41)
	if err != nil {
		return nil, err
	}
	v := url.Values{}
	if p.Count != 0 {
		v.Set("count", strconv.Itoa(p.Count))
	}
	if p.Cursor != "" {
		v.Set("cursor", p.Cursor)
	}
	addList(v, "attributes", p.Attributes)
	addList(v, "excludedAttributes", p.ExcludedAttributes)
	u.RawQuery = v.Encode()
	return c.userList(ctx, c.bearerRequest(op, http.MethodGet, u, accessToken, nil))
}

// SearchUsers runs an Identity v4.1 search (POST /Users/.search with a
// SearchRequest body). Concur parses the filter; its refusals come back as
// ClassInvalidRequest errors carrying Concur's messages.
func (c *Client) SearchUsers(ctx context.Context, baseURL string, accessToken Secret, r SearchRequest) (*UserList, error) {
	op := opSearchUsers
	if err := checkPage(r.Count, r.Cursor); err != nil {
		return nil, &Error{Op: op, Class: ClassInvalidRequest, Err: err}
	}
	u, err := c.apiURL(op, baseURL, accessToken, identityUsersPathV41+"/.search")
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(searchRequestBody{
		Schemas: []string{schemaSearchRequest}, Filter: r.Filter, Count: r.Count, Cursor: r.Cursor,
		Attributes: trimmed(r.Attributes), ExcludedAttributes: trimmed(r.ExcludedAttributes),
	})
	if err != nil {
		return nil, &Error{Op: op, Class: ClassInvalidRequest, Err: err}
	}
	req := c.bearerRequest(op, http.MethodPost, u, accessToken, nil)
	req.header.Set("Content-Type", "application/json")
	// A search reads; sending it again after a lost answer changes nothing.
	req.body = body
	return c.userList(ctx, req)
}

type searchRequestBody struct {
	Schemas            []string `json:"schemas"`
	Filter             string   `json:"filter,omitempty"`
	Attributes         []string `json:"attributes,omitempty"`
	ExcludedAttributes []string `json:"excludedAttributes,omitempty"`
	Count              int      `json:"count,omitempty"`
	Cursor             string   `json:"cursor,omitempty"`
}

// userList runs r and decodes a SCIM ListResponse. The cursor of the next
// page is nextCursor; older docs call it continuationToken.
func (c *Client) userList(ctx context.Context, r *request) (*UserList, error) {
	var list *UserList
	r.onSuccess = func(_ http.Header, b []byte) error {
		var l struct {
			UserList
			ContinuationToken string `json:"continuationToken"`
		}
		if err := json.Unmarshal(b, &l); err != nil {
			return errors.New("malformed user list response")
		}
		if l.NextCursor == "" {
			l.NextCursor = l.ContinuationToken
		}
		l.NextCursor = strings.TrimSpace(l.NextCursor)
		list = &l.UserList
		return nil
	}
	if err := c.do(ctx, r); err != nil {
		return nil, err
	}
	return list, nil
}

// checkPage bounds a v4.1 page request.
func checkPage(count int, cursor string) error {
	if count < 0 || count > maxUserCountV41 {
		return fmt.Errorf("count %d is outside 1..%d", count, maxUserCountV41)
	}
	if len(cursor) > maxCursorLength {
		return fmt.Errorf("cursor is longer than %d characters", maxCursorLength)
	}
	for _, r := range cursor {
		if r <= ' ' || r > '~' {
			return errors.New("cursor contains characters a Concur cursor never has")
		}
	}
	return nil
}

func trimmed(items []string) []string {
	var kept []string
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			kept = append(kept, it)
		}
	}
	return kept
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
	if kept := trimmed(items); len(kept) > 0 {
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
			if (ch < '0' || ch > '9') && (ch < 'a' || ch > 'f') && (ch < 'A' || ch > 'F') {
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
