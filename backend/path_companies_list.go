package backend

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

const pathCompaniesListHelpDescription = `
LIST companies/ answers the company names (keys) and each company's state
(key_info, shown as a table by "vault list -detailed concur/companies"):
status, geolocation, the access and refresh tokens' expiry, the code and time
of the last error, prewarm. Never a secret.

Query parameters: status (ok, degraded, needs_bootstrap or unreadable: only
those companies), after (only names that sort after this one: the last name of the
previous page) and limit (at most this many; default all). "vault list" sends
no parameters; use the HTTP API
(curl -H "X-Vault-Token: ..." "$VAULT_ADDR/v1/concur/companies?list=true&status=needs_bootstrap")
or "vault read concur/companies list=true status=needs_bootstrap", which Vault
turns into the same LIST.
`

// oauthErrorCode is what an OAuth error code looks like (RFC 6749 allows
// more; Concur's are such words).
var oauthErrorCode = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// listStatuses are the values the status filter takes (a company's status
// as reads show it).
var listStatuses = []string{statusOK, statusDegraded, statusNeedsBootstrap, statusUnreadable}

func pathCompaniesList(b *backend) *framework.Path {
	return &framework.Path{
		Pattern:      "companies/?$",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "concur", OperationSuffix: "companies"},
		Fields: map[string]*framework.FieldSchema{
			"status": {
				Type:        framework.TypeString,
				Query:       true,
				Description: "Only the companies in this state: ok, degraded, needs_bootstrap or unreadable.",
			},
			"after": {
				Type:        framework.TypeString,
				Query:       true,
				Description: "Only the companies whose names sort after this one (the last name of the previous page).",
			},
			"limit": {
				Type:        framework.TypeInt,
				Query:       true,
				Description: "At most this many companies (default: all).",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ListOperation: &framework.PathOperation{Callback: b.pathCompaniesList,
				Summary: "List the companies and their state (keys, key_info); filter by status, page with after and limit."},
		},
		HelpSynopsis:    pathCompaniesHelpSynopsis,
		HelpDescription: strings.TrimSpace(pathCompaniesListHelpDescription),
	}
}

// listQuery is what a LIST of companies asks for.
type listQuery struct {
	status string // "": every status
	after  string // "": from the first name
	limit  int    // 0: no limit
}

func listQueryFrom(d *framework.FieldData) (listQuery, *logical.Response) {
	q := listQuery{status: d.Get("status").(string), after: d.Get("after").(string), limit: d.Get("limit").(int)}
	if q.status != "" && !slices.Contains(listStatuses, q.status) {
		return q, fieldError("status", "must be one of %s", strings.Join(listStatuses, ", "))
	}
	if q.limit < 0 {
		return q, fieldError("limit", "must be a positive number of companies (or 0 for all)")
	}
	return q, nil
}

// pathCompaniesList answers the companies in name order, from after on, that
// have the status asked for, up to limit of them. Only the companies it
// shows and the ones it skips by status are looked at.
func (b *backend) pathCompaniesList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	q, resp := listQueryFrom(d)
	if resp != nil {
		return resp, nil
	}
	names, err := b.companyNames(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	names = names[sort.Search(len(names), func(i int) bool { return names[i] > q.after }):]
	keys := []string{}
	info := map[string]any{}
	for _, name := range names {
		if q.limit > 0 && len(keys) == q.limit {
			break
		}
		co, err := b.lookup(ctx, req.Storage, name)
		if err != nil {
			return nil, err
		}
		if co == nil {
			continue // deleted since companyNames
		}
		row := companyListInfo(co.current())
		if q.status != "" && row["status"] != q.status {
			continue
		}
		keys = append(keys, name)
		info[name] = row
	}
	return logical.ListResponseWithInfo(keys, info), nil
}

// companyListInfo is a company's row in LIST's key_info: its state in
// brief, as companies/<name> read shows it in full. No secret.
func companyListInfo(v companyView) map[string]any {
	if v.entry == nil { // stored but undecodable (v.unreadable): companies/<name> read says why
		return map[string]any{"status": statusUnreadable, "geolocation": "", "access_token_expires_at": "",
			"refresh_token_expires_at": "", "last_error_code": statusUnreadable, "last_error_at": "", "prewarm": false}
	}
	t := v.entry.Token
	return map[string]any{
		"status":                   viewStatus(v),
		"geolocation":              t.Geolocation,
		"access_token_expires_at":  formatTime(t.ExpiresAt),
		"refresh_token_expires_at": formatTime(t.RefreshExpiresAt),
		"last_error_code":          t.LastErrorCode,
		"last_error_at":            formatTime(t.LastErrorAt),
		"prewarm":                  v.entry.Prewarm,
	}
}

// failureCode is the short code of a failed renewal, kept with the company
// for LIST: Concur's error code when it sent one (108, ...), else the HTTP
// status of a 5xx or 429 (http_503), else the OAuth error of a refusal
// (invalid_grant, ...), no_response when no answer came, not_sent when the
// call was refused before it left; "" for a failure that was not Concur's
// answer (storage, shutdown).
func failureCode(err error) string {
	var ce *concur.Error
	switch {
	case !errors.As(err, &ce):
		return ""
	case ce.Code != 0:
		return strconv.Itoa(ce.Code)
	case ce.StatusCode >= 500 || ce.StatusCode == http.StatusTooManyRequests:
		return "http_" + strconv.Itoa(ce.StatusCode)
	case oauthErrorCode.MatchString(ce.ErrorCode):
		return ce.ErrorCode
	case ce.StatusCode != 0:
		return "http_" + strconv.Itoa(ce.StatusCode)
	case ce.Class == concur.ClassTransient:
		return "no_response"
	}
	return "not_sent"
}
