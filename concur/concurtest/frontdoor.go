package concurtest

import (
	"net/http"
	"strings"
)

// Concur's front door. The references spell every path one way
// (/profile/identity/v4/Users); SAP's own published clients also send
// /profile/identity/v4/users and /users/{id} (the user-provisioning Postman
// collection, the duty-of-care guide) and build URLs from a root with a
// trailing slash (https://host//profile/...). SAP publishing them suggests
// Concur's gateway accepts both, so by default the simulator does what
// such a front door does before routing: repeated slashes are merged and
// the fixed segments of a path (oauth2, v0, token, profile, identity, v4,
// Users, Schemas, ...) are matched whatever their case. The strict reading,
// the path exactly as the references write it, is Options.StrictPaths
// (concur-sim --strict-paths, POST /_sim/strict-paths).

// fixedSegments are the literal path segments, by lower-case spelling.
var fixedSegments = func() map[string]string {
	out := map[string]string{}
	for _, s := range []string{"oauth2", "v0", "token", "jwks", "app-mgmt", "connections", "profile", "identity", "v4", "v4.1",
		"Users", resSchemas, resResourceTypes, resServiceProviderConfig} {
		out[strings.ToLower(s)] = s
	}
	return out
}()

// apiRoots are the first segments of the APIs the simulator serves.
var apiRoots = map[string]bool{"oauth2": true, "app-mgmt": true, "profile": true}

// frontDoorPath is path as the front door passes it on: repeated slashes
// merged and, on the APIs' paths, fixed segments spelt as the references
// spell them. Variable segments (user ids, schema URNs) are left alone, and
// so is a trailing slash, which the references' own templates carry.
func frontDoorPath(path string) string {
	segs := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
	if len(segs) > 0 && apiRoots[strings.ToLower(segs[0])] {
		spellFixedSegments(segs)
	}
	out := "/" + strings.Join(segs, "/")
	if strings.HasSuffix(path, "/") && len(segs) > 0 {
		out += "/"
	}
	return out
}

// spellFixedSegments rewrites the fixed segments in place: the first four
// (/profile/identity/v4/Users) and .search after Users; ids come later.
func spellFixedSegments(segs []string) {
	for i, seg := range segs[:min(len(segs), 4)] {
		if canon, fixed := fixedSegments[strings.ToLower(seg)]; fixed {
			segs[i] = canon
		}
	}
	if len(segs) > 4 && segs[3] == "Users" && strings.EqualFold(segs[4], searchSuffix[1:]) {
		segs[4] = searchSuffix[1:]
	}
}

// SetStrictPaths switches between the front door's reading (false: merged
// slashes, any case) and the references' literal paths (true).
func (s *Server) SetStrictPaths(strict bool) { s.strictPaths.Store(strict) }

// throughFrontDoor rewrites r's path as the front door would, unless paths are strict.
func (s *Server) throughFrontDoor(r *http.Request) {
	if s.strictPaths.Load() {
		return
	}
	r.URL.Path = frontDoorPath(r.URL.Path)
	r.URL.RawPath = ""
}

// writeNotModelled is the answer for any path the simulator does not serve:
// the gateway's 404 in the shape Concur's v4 services use, saying so.
func (s *Server) writeNotModelled(w http.ResponseWriter, r *http.Request) {
	writeGatewayError(w, http.StatusNotFound, "NOT_FOUND",
		"Resource not found: concur-sim does not model "+r.Method+" "+r.URL.Path+" (docs/concur-sim.md lists what it serves)",
		r.URL.Path, s.Clock.Now())
}
