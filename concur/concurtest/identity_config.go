package concurtest

import (
	"net/http"
	"sort"
	"strings"
)

// Identity's SCIM configuration endpoints (D-ID4 / D-ID41 "Resource
// Types", "Service Provider Configuration", "Fetch All Schemas", "Fetch a
// Specific Schema"), on v4 and v4.1, in the shapes of the references'
// schema tables and RFC 7643 where the tables are silent. They need a
// valid bearer token but no identity scope.

// SCIM schema URNs of the configuration resources.
const (
	SchemaSchema                = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	SchemaResourceType          = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaServiceProviderConfig = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
)

// Configuration resource names as the references spell them.
const (
	resSchemas               = "Schemas"
	resResourceTypes         = "ResourceTypes"
	resServiceProviderConfig = "ServiceProviderConfig"
)

// handleIdentityConfig serves GET {base}/Schemas[/{id}], /ResourceTypes[/{id}]
// and /ServiceProviderConfig.
func (s *Server) handleIdentityConfig(w http.ResponseWriter, r *http.Request, rt identityRoute) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		scimError(w, http.StatusMethodNotAllowed, "", "method not allowed")
		return
	}
	if tok, status := s.bearer(r); tok == nil {
		s.writeUnauthorized(w, r, status)
		return
	}
	var list []map[string]any
	switch rt.kind {
	case resSchemas:
		list = identitySchemas(rt.version())
	case resResourceTypes:
		list = []map[string]any{userResourceType(rt.version())}
	default:
		if rt.id != "" {
			scimError(w, http.StatusNotFound, "", "Resource not found: "+resServiceProviderConfig+"/"+rt.id)
			return
		}
		writeJSON(w, http.StatusOK, serviceProviderConfig(rt))
		return
	}
	if rt.id == "" {
		writeJSON(w, http.StatusOK, map[string]any{
			"schemas": []any{SchemaListResponse}, "totalResults": len(list), "itemsPerPage": len(list), "startIndex": 1,
			"Resources": list,
		})
		return
	}
	for _, res := range list {
		if strings.EqualFold(res["id"].(string), rt.id) {
			writeJSON(w, http.StatusOK, res)
			return
		}
	}
	scimError(w, http.StatusNotFound, "", "Resource not found: "+rt.kind+"/"+rt.id)
}

// identitySchemas describes the User schema and its two extensions,
// attribute by attribute, from the table the projection uses.
func identitySchemas(version string) []map[string]any {
	byURN := map[string][]any{}
	for _, entry := range userSchema() {
		name, subs := entry[0], entry[1:]
		switch name {
		case SchemaEnterpriseUser, SchemaSAPUser:
			for _, sub := range subs {
				byURN[name] = append(byURN[name], schemaAttribute(sub, nil))
			}
		case "schemas":
		default:
			byURN[SchemaCoreUser] = append(byURN[SchemaCoreUser], schemaAttribute(name, subs))
		}
	}
	described := []struct{ id, name, desc string }{
		{SchemaCoreUser, "User", "A Concur user account"},
		{SchemaEnterpriseUser, "EnterpriseUser", "Enterprise User"},
		{SchemaSAPUser, "SAPUser", "SAP User"},
	}
	out := make([]map[string]any, 0, len(described))
	for _, d := range described {
		attrs := byURN[d.id]
		sort.Slice(attrs, func(i, j int) bool {
			return attrs[i].(map[string]any)["name"].(string) < attrs[j].(map[string]any)["name"].(string)
		})
		out = append(out, map[string]any{
			"schemas": []any{SchemaSchema}, "id": d.id, "name": d.name, "description": d.desc, "attributes": attrs,
			"meta": map[string]any{"resourceType": "Schema", "location": "/" + version + "/Schemas/" + d.id},
		})
	}
	return out
}

var (
	multiValuedAttributes = map[string]bool{"emails": true, "phoneNumbers": true, "addresses": true, "entitlements": true,
		"emergencyContacts": true}
	readOnlyAttributes = map[string]bool{"id": true, "meta": true, "localeOverrides": true, "organization": true}
	booleanAttributes  = map[string]bool{"active": true, "primary": true, "verified": true, "notifications": true}
	requiredAttributes = map[string]bool{"userName": true, "active": true, "name": true, "emails": true, "companyId": true}
)

// schemaAttribute is one attribute definition (D-ID4 "Attributes").
func schemaAttribute(name string, subs []string) map[string]any {
	typ := "string"
	switch {
	case len(subs) > 0 || name == "manager":
		typ = "complex"
	case booleanAttributes[name]:
		typ = "boolean"
	}
	mutability, returned, uniqueness := "readWrite", "default", "none"
	if readOnlyAttributes[name] {
		mutability = "readOnly"
	}
	switch name {
	case "id":
		returned, uniqueness = "always", "server"
	case "userName":
		uniqueness = "global"
	}
	attr := map[string]any{
		"name": name, "type": typ, "multiValued": multiValuedAttributes[name], "required": requiredAttributes[name],
		"caseExact": name == "id", "mutability": mutability, "returned": returned, "uniqueness": uniqueness,
	}
	if typ == "complex" {
		var sub []any
		for _, s := range subs {
			sub = append(sub, schemaAttribute(s, nil))
		}
		attr["subAttributes"] = sub
	}
	return attr
}

// userResourceType is the one resource type Identity serves. RFC 7643
// names the extension list schemaExtensions; the reference's table calls
// the same list "attributes" (Schema Extension objects), so both are sent.
func userResourceType(version string) map[string]any {
	ext := []any{
		map[string]any{"schema": SchemaEnterpriseUser, "required": true},
		map[string]any{"schema": SchemaSAPUser, "required": false},
	}
	return map[string]any{
		"schemas": []any{SchemaResourceType}, "id": "User", "name": "User", "endpoint": "/Users",
		"description": "User Account", "schema": SchemaCoreUser, "schemaExtensions": ext, "attributes": ext,
		"meta": map[string]any{"resourceType": "ResourceType", "location": "/" + version + "/ResourceTypes/User"},
	}
}

// serviceProviderConfig says what Identity supports: filters (v4: userName,
// employeeNumber, externalId; v4.1 through .search), PATCH; no bulk, sort,
// etag or password change.
func serviceProviderConfig(rt identityRoute) map[string]any {
	maxResults := MaxUserCount
	if rt.v41() {
		maxResults = MaxUserCountV41
	}
	unsupported := map[string]any{"supported": false}
	return map[string]any{
		"schemas":          []any{SchemaServiceProviderConfig},
		"documentationUrl": "https://developer.concur.com/api-reference/profile/" + rt.version() + ".identity.html",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": maxResults},
		"changePassword":   unsupported, "sort": unsupported, "etag": unsupported,
		"authenticationSchemes": []any{map[string]any{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token",
			"description": "Authentication with a company access token from /oauth2/v0/token",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": "/" + rt.version() + "/ServiceProviderConfig"},
	}
}
