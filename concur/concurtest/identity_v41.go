package concurtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
)

// listV41 is GET /profile/identity/v4.1/Users: count (default 100, at most
// 1000) and cursor; "startIndex not supported due to deep pagination", and
// no filter (that is what .search is for). The reference example's answer
// has no startIndex.
func (ic *identityCall) listV41(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, name := range []string{"startIndex", "filter"} {
		if q.Has(name) {
			scimError(w, http.StatusBadRequest, "invalidValue",
				"Parameter ["+name+"] is not supported by Identity v4.1 GET /Users (use cursor, or POST /Users/.search)")
			return
		}
	}
	proj, ok := ic.queryProjection(w, r)
	if !ok {
		return
	}
	count, err := intParam(q, "count", DefaultUserCountV41)
	if err != nil {
		scimError(w, http.StatusBadRequest, "invalidValue", err.Error())
		return
	}
	ic.writePage(w, ic.users, "", count, q.Get("cursor"), proj, false)
}

// searchRequest is the SearchRequest schema (D-SRCH).
type searchRequest struct {
	Schemas            []string `json:"schemas"`
	Filter             string   `json:"filter"`
	Attributes         []string `json:"attributes"`
	ExcludedAttributes []string `json:"excludedAttributes"`
	Count              *int     `json:"count"`
	Cursor             string   `json:"cursor"`
}

// search is POST /profile/identity/v4.1/Users/.search. The search guide's
// answers carry startIndex, so these do.
func (ic *identityCall) search(w http.ResponseWriter, r *http.Request) {
	var req searchRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		scimError(w, http.StatusBadRequest, "invalidSyntax", "Request body is not a SearchRequest JSON object")
		return
	}
	if !containsFold(req.Schemas, SchemaSearchRequest) {
		scimError(w, http.StatusBadRequest, "invalidSyntax", "schemas is required and must name "+SchemaSearchRequest)
		return
	}
	proj, ok := ic.projection(w, strings.Join(req.Attributes, ","), strings.Join(req.ExcludedAttributes, ","))
	if !ok {
		return
	}
	matched := ic.users
	if strings.TrimSpace(req.Filter) != "" {
		f, err := parseSearchFilter(req.Filter)
		if err != nil {
			scimError(w, http.StatusBadRequest, "invalidFilter", err.Error())
			return
		}
		// Filters see what the token's scopes let it see, nothing more.
		visible := projection{allowed: ic.allowed}
		matched = nil
		for _, u := range ic.users {
			if f.match(visible.apply(ic.resource(u))) {
				matched = append(matched, u)
			}
		}
	}
	count := DefaultUserCountV41
	if req.Count != nil {
		count = *req.Count
	}
	ic.writePage(w, matched, req.Filter, count, req.Cursor, proj, true)
}

// writePage answers one page of matched, starting where cursor points.
// nextCursor is present only when more users follow.
func (ic *identityCall) writePage(w http.ResponseWriter, matched []*simUser, filter string, count int, cursor string,
	proj projection, withStartIndex bool) {
	count = min(max(count, 0), MaxUserCountV41)
	offset := 0
	if cursor != "" {
		var ok bool
		if offset, ok = ic.decodeCursor(cursor, filter); !ok {
			scimError(w, http.StatusBadRequest, "invalidValue", "Invalid cursor")
			return
		}
	}
	resources := []any{}
	for i := offset; i < len(matched) && len(resources) < count; i++ {
		resources = append(resources, ic.render(matched[i], proj))
	}
	body := map[string]any{
		"schemas":      []any{SchemaListResponse},
		"totalResults": len(matched),
		"itemsPerPage": len(resources),
		"Resources":    resources,
	}
	if withStartIndex {
		body["startIndex"] = offset + 1
	}
	if next := offset + len(resources); next < len(matched) && len(resources) > 0 {
		body["nextCursor"] = ic.encodeCursor(next, filter)
	}
	writeJSON(w, http.StatusOK, body)
}

// cursorState is what a cursor carries: where the next page starts and
// which query (company and filter) it belongs to, so a cursor cannot be
// replayed against another query.
type cursorState struct {
	StartIndex int    `json:"startIndex"`
	Query      string `json:"query"`
}

func (ic *identityCall) queryKey(filter string) string {
	sum := sha256.Sum256([]byte(ic.company + "\n" + filter))
	return hex.EncodeToString(sum[:8])
}

func (ic *identityCall) encodeCursor(offset int, filter string) string {
	b, _ := json.Marshal(cursorState{StartIndex: offset + 1, Query: ic.queryKey(filter)})
	return base64.RawURLEncoding.EncodeToString(b)
}

func (ic *identityCall) decodeCursor(cursor, filter string) (int, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, false
	}
	var st cursorState
	if json.Unmarshal(raw, &st) != nil || st.StartIndex < 1 || st.Query != ic.queryKey(filter) {
		return 0, false
	}
	return st.StartIndex - 1, true
}

func containsFold(list []string, want string) bool {
	for _, v := range list {
		if strings.EqualFold(v, want) {
			return true
		}
	}
	return false
}
