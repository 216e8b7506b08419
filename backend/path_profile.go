package backend

import (
	"context"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

const (
	maxProfileCount  = 100  // Identity v4's page-size limit (filtered searches)
	maxRosterCount   = 1000 // Identity v4.1's page-size limit (the roster)
	maxCursorLength  = 4096
	maxAttributes    = 64
	maxFilterValue   = 256
	maxAttributeName = 200
)

// scimAttributePath is an Identity attribute name: optionally a schema URN
// prefix, an attribute and an optional sub-attribute ("emails.value",
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber").
var scimAttributePath = regexp.MustCompile(`^(urn:[A-Za-z0-9.:_-]+:)?[A-Za-z][A-Za-z0-9_$-]*(\.[A-Za-z][A-Za-z0-9_$-]*)?$`)

// projection reads attributes and excluded_attributes, refusing anything
// that is not an attribute name.
func projection(d *framework.FieldData) (attrs, excluded []string, resp *logical.Response) {
	get := func(field string) ([]string, *logical.Response) {
		names := d.Get(field).([]string)
		if len(names) > maxAttributes {
			return nil, fieldError(field, "has more than %d names", maxAttributes)
		}
		for _, n := range names {
			if len(n) > maxAttributeName || !scimAttributePath.MatchString(n) {
				return nil, fieldError(field, "%q is not an attribute name such as userName or emails.value", truncate(n, 40))
			}
		}
		return names, nil
	}
	if attrs, resp = get("attributes"); resp != nil {
		return
	}
	excluded, resp = get("excluded_attributes")
	return
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

const pathProfileHelpSynopsis = "Read users from Concur Identity v4 with the company token."

const pathProfileHelpDescription = `
profile/<user-uuid> returns {"user": <the Identity v4 user>}, the user
exactly as Concur sends it (id, userName, name, emails, the enterprise
extension, ...), limited to what the app's identity.user.* scopes allow.
attributes and excluded_attributes (comma lists) narrow it. The user is
nested so that no attribute Concur sends can be taken by Vault for one of
its own response keys.

profile with exactly one of user_name, employee_number or external_id finds
the matching users (Identity v4): total_results, start_index, items_per_page
and users. count (1-100, default 10) and start_index (from 1) page through
them.

profile with filter runs an Identity v4.1 search: filter is a SCIM filter
expression as Concur's search guide writes them, for example
  active eq true and emails.value ew "@example.com"
sent to Concur in the request body, never in a URL. The engine parses it
first and refuses, naming the field, anything Concur's guide rules out
(unknown attributes, not/ne or a nested or inside emails[...] or
addresses[...], over 4096 characters or 16 levels of nesting). The answer
pages as the list of all users does: total_results, items_per_page, users,
next_cursor; count (1-1000, default 100) and cursor.

profile with none of them lists the company's users one page at a time
(Identity v4.1): total_results, items_per_page, users and next_cursor.
count (1-1000, default 100) sets the page size; pass next_cursor back as
cursor for the next page. next_cursor is "" on the last page. Each read is
one page: nothing reads all pages at once.

Apps that may read profiles never see the bearer token. If Concur refuses the
token before it expires, the engine renews it once and retries once.
`

func pathProfile(b *backend) []*framework.Path {
	projection := map[string]*framework.FieldSchema{
		"attributes": {
			Type:        framework.TypeCommaStringSlice,
			Query:       true,
			Description: "Only these attributes (Identity v4 names, e.g. userName,emails). id is always returned.",
		},
		"excluded_attributes": {
			Type:        framework.TypeCommaStringSlice,
			Query:       true,
			Description: "Leave these attributes out.",
		},
	}
	byID := map[string]*framework.FieldSchema{
		"id": {
			Type:        framework.TypeString,
			Description: "The user's Concur UUID.",
		},
	}
	search := map[string]*framework.FieldSchema{
		"user_name":       {Type: framework.TypeString, Query: true, Description: "Find the user with this userName (login id)."},
		"employee_number": {Type: framework.TypeString, Query: true, Description: "Find users with this employeeNumber."},
		"external_id":     {Type: framework.TypeString, Query: true, Description: "Find users with this externalId."},
		"filter": {Type: framework.TypeString, Query: true,
			Description: `Search with a SCIM filter (Identity v4.1), e.g. active eq true and emails.value ew "@example.com".`},
		"count": {Type: framework.TypeInt, Query: true,
			Description: "Page size: 1 to 100 with user_name, employee_number or external_id (Concur's default: 10), " +
				"1 to 1000 otherwise (default: 100)."},
		"start_index": {Type: framework.TypeInt, Query: true,
			Description: "With user_name, employee_number or external_id: 1-based index of the first result (default 1)."},
		"cursor": {Type: framework.TypeString, Query: true,
			Description: "With filter or none: the next_cursor of the previous page (empty for the first page)."},
	}
	for k, v := range projection {
		byID[k] = v
		search[k] = v
	}
	return []*framework.Path{
		{
			Pattern:      "profile/(?P<id>.+)",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "concur"},
			Fields:       byID,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback:     b.pathProfileRead,
					Summary:      "Read one Identity v4 user by Concur UUID.",
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read", OperationSuffix: "profile"},
				},
			},
			HelpSynopsis:    pathProfileHelpSynopsis,
			HelpDescription: strings.TrimSpace(pathProfileHelpDescription),
		},
		{
			Pattern:      "profile/?$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "concur"},
			Fields:       search,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback:     b.pathProfileSearch,
					Summary:      "Find users by user_name, employee_number, external_id or a SCIM filter, or list them all page by page.",
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "search", OperationSuffix: "profiles"},
				},
			},
			HelpSynopsis:    pathProfileHelpSynopsis,
			HelpDescription: strings.TrimSpace(pathProfileHelpDescription),
		},
	}
}

func (b *backend) pathProfileRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	co, resp, err := b.companyToRead(ctx, req.Storage, d)
	if resp != nil || err != nil {
		return resp, err
	}
	id := d.Get("id").(string)
	if err := concur.ValidateUserID(id); err != nil {
		return fieldError("id", "%v: must be a Concur user UUID such as 3df11695-e8bb-40ff-8e98-c85913ab2789", err), nil
	}
	attrs, excluded, resp := projection(d)
	if resp != nil {
		return resp, nil
	}
	q := concur.UserQuery{Attributes: attrs, ExcludedAttributes: excluded}
	var user map[string]any
	err = b.withBearer(ctx, req.Storage, co, func(a bearer) (err error) {
		user, err = a.client.GetUser(ctx, a.host, a.token, strings.ToLower(id), q)
		return err
	})
	if err != nil {
		return nil, err
	}
	// Nested under a fixed key: a top-level key from Concur such as
	// http_status_code or http_raw_body would switch Vault to its raw
	// response mode and let upstream data set the status and body.
	return &logical.Response{Data: map[string]any{"user": user}}, nil
}

func (b *backend) pathProfileSearch(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	co, resp, err := b.companyToRead(ctx, req.Storage, d)
	if resp != nil || err != nil {
		return resp, err
	}
	attrs, excluded, resp := projection(d)
	if resp != nil {
		return resp, nil
	}
	f := concur.UserFilter{Attributes: attrs, ExcludedAttributes: excluded}
	var given []string
	filters := map[string]string{"user_name": concur.FilterUserName, "employee_number": concur.FilterEmployeeNumber,
		"external_id": concur.FilterExternalID}
	for field, attr := range filters {
		if raw, ok := d.GetOk(field); ok {
			v := raw.(string)
			if v == "" || len(v) > maxFilterValue {
				return fieldError(field, "must be 1 to %d characters", maxFilterValue), nil
			}
			if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
				return fieldError(field, "contains control characters or invalid UTF-8"), nil
			}
			given = append(given, field)
			f.Attribute, f.Value = attr, v
		}
	}
	if raw, ok := d.GetOk("filter"); ok {
		given = append(given, "filter")
		if len(given) == 1 {
			return b.profileFilter(ctx, req, d, co, concur.SearchRequest{Filter: raw.(string), Attributes: attrs,
				ExcludedAttributes: excluded})
		}
	}
	switch len(given) {
	case 0:
		return b.profileRoster(ctx, req, d, co, concur.UserPage{Attributes: attrs, ExcludedAttributes: excluded})
	case 1:
		return b.profileFind(ctx, req, d, co, f)
	}
	return logical.ErrorResponse("user_name, employee_number, external_id, filter: give at most one"), nil
}

// profileFind is the filtered search (Identity v4, startIndex paging).
func (b *backend) profileFind(ctx context.Context, req *logical.Request, d *framework.FieldData, co *company,
	f concur.UserFilter) (*logical.Response, error) {
	if _, ok := d.GetOk("cursor"); ok {
		return fieldError("cursor", "pages the list of all users; a search by user_name, employee_number or external_id "+
			"pages with start_index"), nil
	}
	if raw, ok := d.GetOk("count"); ok {
		if f.Count = raw.(int); f.Count < 1 || f.Count > maxProfileCount {
			return fieldError("count", "must be between 1 and %d", maxProfileCount), nil
		}
	}
	if raw, ok := d.GetOk("start_index"); ok {
		if f.StartIndex = raw.(int); f.StartIndex < 1 {
			return fieldError("start_index", "must be 1 or more"), nil
		}
	}
	var list *concur.UserList
	err := b.withBearer(ctx, req.Storage, co, func(a bearer) (err error) {
		if f.Attribute == concur.FilterEmployeeNumber {
			// The v4 reference marks companyId required with employeeNumber.
			f.CompanyID = a.company
		}
		list, err = a.client.FindUsers(ctx, a.host, a.token, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"total_results":  list.TotalResults,
		"start_index":    list.StartIndex,
		"items_per_page": list.ItemsPerPage,
		"users":          userSlice(list),
	}}, nil
}

// profileRoster reads one page of the company's users (Identity v4.1,
// cursor paging), so apps can sync a roster without holding a token.
func (b *backend) profileRoster(ctx context.Context, req *logical.Request, d *framework.FieldData, co *company,
	p concur.UserPage) (*logical.Response, error) {
	return b.cursorPage(ctx, req, d, co, func(a bearer, count int, cursor string) (*concur.UserList, error) {
		p.Count, p.Cursor = count, cursor
		return a.client.ListUsers(ctx, a.host, a.token, p)
	})
}

// profileFilter runs an Identity v4.1 search (POST /Users/.search, the
// filter in the body) after checking the filter as Concur's guide does, so
// that nothing Concur would refuse is sent and apps learn which field is wrong.
func (b *backend) profileFilter(ctx context.Context, req *logical.Request, d *framework.FieldData, co *company,
	sr concur.SearchRequest) (*logical.Response, error) {
	if !utf8.ValidString(sr.Filter) || strings.IndexFunc(sr.Filter, unicode.IsControl) >= 0 {
		return fieldError("filter", "contains control characters or invalid UTF-8"), nil
	}
	if _, err := concur.ParseSearchFilter(sr.Filter); err != nil {
		return fieldError("filter", "%v", err), nil
	}
	return b.cursorPage(ctx, req, d, co, func(a bearer, count int, cursor string) (*concur.UserList, error) {
		sr.Count, sr.Cursor = count, cursor
		return a.client.SearchUsers(ctx, a.host, a.token, sr)
	})
}

// cursorPage answers one Identity v4.1 page (the roster or a filter search)
// that fetch reads with the paging the request asks for.
func (b *backend) cursorPage(ctx context.Context, req *logical.Request, d *framework.FieldData, co *company,
	fetch func(a bearer, count int, cursor string) (*concur.UserList, error)) (*logical.Response, error) {
	count, cursor, resp := cursorPaging(d)
	if resp != nil {
		return resp, nil
	}
	var list *concur.UserList
	err := b.withBearer(ctx, req.Storage, co, func(a bearer) (err error) {
		list, err = fetch(a, count, cursor)
		return err
	})
	if err != nil {
		return nil, err
	}
	return cursorPageResponse(list), nil
}

// cursorPaging reads count and cursor of an Identity v4.1 page (the roster
// or a filter search); start_index belongs to the v4 searches.
func cursorPaging(d *framework.FieldData) (count int, cursor string, resp *logical.Response) {
	if _, ok := d.GetOk("start_index"); ok {
		return 0, "", fieldError("start_index", "pages a search by user_name, employee_number or external_id; "+
			"the list of all users and filter searches page with cursor")
	}
	if raw, ok := d.GetOk("count"); ok {
		if count = raw.(int); count < 1 || count > maxRosterCount {
			return 0, "", fieldError("count", "must be between 1 and %d", maxRosterCount)
		}
	}
	if raw, ok := d.GetOk("cursor"); ok {
		cursor = raw.(string)
		if len(cursor) > maxCursorLength || strings.IndexFunc(cursor, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
			return 0, "", fieldError("cursor", "must be the next_cursor of a previous page (up to %d printable characters)",
				maxCursorLength)
		}
	}
	return count, cursor, nil
}

func cursorPageResponse(list *concur.UserList) *logical.Response {
	return &logical.Response{Data: map[string]any{
		"total_results":  list.TotalResults,
		"items_per_page": list.ItemsPerPage,
		"users":          userSlice(list),
		"next_cursor":    list.NextCursor,
	}}
}

func userSlice(list *concur.UserList) []any {
	users := make([]any, 0, len(list.Resources))
	for _, u := range list.Resources {
		users = append(users, u)
	}
	return users
}

// bearer is what an Identity call needs: the client, the host to call, the
// access token and the company it belongs to.
type bearer struct {
	client  *concur.Client
	host    string
	token   concur.Secret
	company string
}

func bearerOf(sv *served) bearer {
	return bearer{client: sv.app.client, host: sv.entry.Token.Geolocation,
		token: concur.NewSecret(sv.entry.Token.AccessToken), company: sv.entry.CompanyUUID}
}

// withBearer calls Concur with the current access token. If Concur refuses
// the token before its expiry (401/403), the token is renewed once and the
// call retried once.
func (b *backend) withBearer(ctx context.Context, s logical.Storage, co *company, call func(bearer) error) error {
	sv, err := co.usable(ctx, s, minServeTTL)
	if err != nil {
		return err
	}
	err = call(bearerOf(sv))
	if !concur.IsUnauthorized(err) {
		if err != nil {
			return upstreamError(err)
		}
		return nil
	}
	if !b.writeSafe() {
		return logical.ErrReadOnly
	}
	if rerr := co.renewRejected(ctx, s, sv.entry.Token.AccessToken); rerr != nil {
		return upstreamError(rerr)
	}
	if sv, err = co.usable(ctx, s, minServeTTL); err != nil {
		return err
	}
	if err = call(bearerOf(sv)); err != nil {
		return upstreamError(err)
	}
	return nil
}
