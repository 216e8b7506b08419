package concurtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// Endpoint names a simulated API for faults and counters.
type Endpoint string

const (
	EndpointToken       Endpoint = "token"       // POST /oauth2/v0/token
	EndpointUsers       Endpoint = "users"       // Identity v4 and v4.1: Users, .search, Schemas, ResourceTypes, ServiceProviderConfig
	EndpointConnections Endpoint = "connections" // DELETE /app-mgmt/v0/connections
	EndpointJWKS        Endpoint = "jwks"        // GET /oauth2/v0/jwks
)

func (ep Endpoint) valid() bool {
	switch ep {
	case EndpointToken, EndpointUsers, EndpointConnections, EndpointJWKS:
		return true
	}
	return false
}

// FaultKind is what an injected fault does to a request.
type FaultKind string

const (
	// FaultStatus answers Status (429/500/503/...) with an optional
	// Retry-After header ("" means no header; "0" is sent as is).
	FaultStatus FaultKind = "status"
	// FaultDelay sleeps Delay (real time, cut short when the client gives
	// up) and then answers normally.
	FaultDelay FaultKind = "delay"
	// FaultMalformedJSON answers 200 with a truncated JSON body.
	FaultMalformedJSON FaultKind = "malformed"
	// FaultOversized answers 200 with a body of Size bytes (default 4 MiB).
	FaultOversized FaultKind = "oversized"
	// FaultDrop closes the connection without any response.
	FaultDrop FaultKind = "drop"
	// FaultDropAfter processes the request for real (a grant rotates and
	// slides tokens, a revocation revokes) and then closes the connection
	// without sending the answer: "Concur did it but the response was lost".
	FaultDropAfter FaultKind = "drop-after"
	// FaultHold processes the request for real (the grant happens, the
	// state changes) and then holds the answer for Delay (real time) before
	// sending it; a client that gives up meanwhile never learns the outcome.
	FaultHold FaultKind = "hold"
	// FaultWrongTypes processes the request for real and sends its 2xx
	// answer with the top-level Fields (default DefaultWrongTypeFields) given
	// the wrong JSON types: scope becomes an array of its words, geolocation
	// an object, other strings numbers, numbers non-numeric strings (3600 ->
	// "3600 seconds"), anything else a string. A non-2xx answer passes unchanged.
	FaultWrongTypes FaultKind = "wrong-types"
	// FaultTruncate processes the request for real and sends its answer
	// (status and headers as they were) cut off after TruncateAt bytes
	// (0 -> half the body).
	FaultTruncate FaultKind = "truncate"
	// FaultOAuthError answers an OAuth2 error of Code, in Concur's exact
	// shape (error, error_description and code from Concur's table; for
	// codes 16 and 108 also geolocation and concur-correlationid), with
	// Status (0 -> 403 for code 53, else 400). Nothing is processed.
	FaultOAuthError FaultKind = "oauth-error"
)

// DefaultWrongTypeFields returns the fields FaultWrongTypes garbles when
// Fault.Fields is empty: the optional fields of a token answer.
func DefaultWrongTypeFields() []string {
	return []string{"scope", "token_type", "geolocation", "expires_in"}
}

func (k FaultKind) valid() bool {
	switch k {
	case FaultStatus, FaultDelay, FaultMalformedJSON, FaultOversized, FaultDrop, FaultDropAfter,
		FaultHold, FaultWrongTypes, FaultTruncate, FaultOAuthError:
		return true
	}
	return false
}

// processes reports whether a fault of this kind runs the real handler
// (and so changes state) before it misbehaves.
func (k FaultKind) processes() bool {
	switch k {
	case FaultDelay, FaultDropAfter, FaultHold, FaultWrongTypes, FaultTruncate:
		return true
	}
	return false
}

// DefaultOversizedBytes is the body size of FaultOversized when Size is 0.
const DefaultOversizedBytes = 4 << 20

// Fault describes one injected misbehaviour. Except FaultDropAfter (and
// FaultDelay, which answers normally afterwards) a fault consumes no token
// state: a faulted refresh neither rotates nor slides anything.
type Fault struct {
	Kind       FaultKind
	Status     int           // FaultStatus: 0 -> 503; FaultOAuthError: 0 -> 400 (403 for code 53)
	RetryAfter string        // FaultStatus, FaultOAuthError: Retry-After header value; "" -> none
	Delay      time.Duration // FaultDelay, FaultHold
	Size       int           // FaultOversized: body bytes; 0 -> DefaultOversizedBytes
	Fields     []string      // FaultWrongTypes: top-level fields to garble; nil -> DefaultWrongTypeFields()
	TruncateAt int           // FaultTruncate: bytes of the body sent; 0 -> half
	Code       int           // FaultOAuthError: a code of Concur's table (concur.OAuthCodes)
	// Geolocation is FaultOAuthError's geolocation for codes 16 and 108;
	// "" -> this data centre's geolocation.
	Geolocation string
	// Processed (FaultHold; optional) is told, without blocking, once the
	// request was processed and its answer is being held, so that a test
	// can act while Concur holds the answer.
	Processed chan<- struct{}
}

// check reports what makes a fault unusable.
func (f Fault) check() error {
	if !f.Kind.valid() {
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	if f.Kind == FaultOAuthError {
		if _, ok := concur.LookupOAuthCode(f.Code); !ok {
			return fmt.Errorf("code %d is not in Concur's OAuth2 error table", f.Code)
		}
		if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
			return fmt.Errorf("status %d is not an error status", f.Status)
		}
	}
	if f.TruncateAt < 0 || f.Delay < 0 || f.Size < 0 {
		return errors.New("negative truncate_at, delay or size")
	}
	return nil
}

type faultEntry struct {
	f    Fault
	left int
}

// faultQueues holds, per endpoint, faults in injection order; each entry
// serves its count of requests before the next one starts.
type faultQueues struct {
	mu sync.Mutex
	q  map[Endpoint][]*faultEntry
}

func (fq *faultQueues) init() { fq.q = map[Endpoint][]*faultEntry{} }

func (fq *faultQueues) take(ep Endpoint) (Fault, bool) {
	fq.mu.Lock()
	defer fq.mu.Unlock()
	q := fq.q[ep]
	if len(q) == 0 {
		return Fault{}, false
	}
	e := q[0]
	e.left--
	if e.left <= 0 {
		fq.q[ep] = q[1:]
	}
	return e.f, true
}

// InjectFault makes the next n requests to ep suffer f. Faults injected for
// the same endpoint queue up behind each other.
func (s *Server) InjectFault(ep Endpoint, n int, f Fault) {
	if n <= 0 {
		return
	}
	if err := f.check(); err != nil {
		panic("concurtest: " + err.Error())
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.q[ep] = append(s.faults.q[ep], &faultEntry{f: f, left: n})
}

// ClearFaults drops every pending fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.init()
}

// PendingFaults returns how many faulted requests ep still has queued.
func (s *Server) PendingFaults(ep Endpoint) int {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	n := 0
	for _, e := range s.faults.q[ep] {
		n += e.left
	}
	return n
}

// serveWithFaults applies the next injected fault for ep, if any, and
// otherwise serves normally. It returns the fault kind for the log line.
func (s *Server) serveWithFaults(w http.ResponseWriter, r *http.Request, ep Endpoint, c *call) string {
	s.setDeprecationHeaders(w, ep)
	f, ok := s.faults.take(ep)
	if !ok {
		s.serve(w, r, ep, c)
		return ""
	}
	if !f.Kind.processes() {
		// The client presented its refresh token even if nothing processed it.
		s.noteUnprocessedRefresh(r, c)
	}
	switch f.Kind {
	case FaultStatus:
		status := f.Status
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		writeJSON(w, status, s.faultBody(status, r.URL.Path))
	case FaultDelay:
		if !waitOrGone(r.Context(), f.Delay) {
			s.noteUnprocessedRefresh(r, c)
			return string(f.Kind) + " (client gone)"
		}
		s.serve(w, r, ep, c)
	case FaultMalformedJSON:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(malformedBody(ep)))
	case FaultOversized:
		writeOversized(w, f.Size)
	case FaultDrop:
		dropConnection(w)
	case FaultDropAfter:
		// Run the real handler against a throw-away writer, then hang up.
		s.serve(&captureWriter{h: http.Header{}}, r, ep, c)
		dropConnection(w)
	case FaultOAuthError:
		s.writeOAuthFault(w, f, c)
	default:
		return s.serveProcessedThen(w, r, ep, c, f)
	}
	return string(f.Kind)
}

// serveProcessedThen runs the real handler into a buffer, so the state
// changes as it would, and then sends the answer held back, garbled or cut.
func (s *Server) serveProcessedThen(w http.ResponseWriter, r *http.Request, ep Endpoint, c *call, f Fault) string {
	cw := &captureWriter{h: http.Header{}}
	s.serve(cw, r, ep, c)
	body := cw.buf.Bytes()
	switch f.Kind {
	case FaultHold:
		notify(f.Processed)
		if !waitOrGone(r.Context(), f.Delay) {
			return string(f.Kind) + " (client gone)"
		}
	case FaultWrongTypes:
		if cw.status() >= 200 && cw.status() < 300 {
			body = wrongTypes(body, f.Fields)
		}
	case FaultTruncate:
		n := f.TruncateAt
		if n == 0 {
			n = len(body) / 2
		}
		body = body[:min(n, len(body))]
	}
	for k, v := range cw.h {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(cw.status())
	_, _ = w.Write(body)
	return string(f.Kind)
}

// notify tells ch, if any, without blocking.
func notify(ch chan<- struct{}) {
	if ch == nil {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// waitOrGone waits d and reports whether the client is still there.
func waitOrGone(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// wrongTypes re-encodes a JSON object with the named top-level fields of
// the wrong JSON type; a body that is not an object is returned unchanged.
func wrongTypes(body []byte, fields []string) []byte {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil || m == nil {
		return body
	}
	if len(fields) == 0 {
		fields = DefaultWrongTypeFields()
	}
	for _, name := range fields {
		v, ok := m[name]
		if !ok {
			continue
		}
		m[name] = wrongType(name, v)
	}
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}

func wrongType(name string, v any) any {
	switch x := v.(type) {
	case string:
		switch name {
		case "scope":
			return strings.Fields(x)
		case "geolocation":
			return map[string]any{"href": x}
		}
		return len(x)
	case float64:
		return fmt.Sprintf("%v seconds", x)
	}
	return fmt.Sprint(v)
}

// writeOAuthFault answers Concur's OAuth2 error of f.Code in its exact shape.
func (s *Server) writeOAuthFault(w http.ResponseWriter, f Fault, c *call) {
	row, _ := concur.LookupOAuthCode(f.Code)
	status := f.Status
	if status == 0 {
		status = http.StatusBadRequest
		if f.Code == concur.CodeCompanyNotEnabled {
			status = http.StatusForbidden
		}
	}
	e := newOAuthError(status, row.Error, row.Description, row.Code)
	if f.Code == concur.CodeWrongDataCenter || f.Code == concur.CodeBadRefreshToken {
		geo := f.Geolocation
		if geo == "" {
			geo = s.geolocation(c.dc)
		}
		e.withGeo(geo, c.cid)
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	s.writeOAuthError(w, c, e)
}

// faultBody is the only concrete 429 body Concur documents (List Item v4,
// reference 8); 5xx bodies are unspecified, so they reuse the shape.
func (s *Server) faultBody(status int, path string) map[string]any {
	id, msg := "service.error", http.StatusText(status)
	if status == http.StatusTooManyRequests {
		id, msg = "security.rate.limit.reached", "Too many requests"
	}
	return map[string]any{
		"timestamp":  s.Clock.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"httpStatus": fmt.Sprintf("%d - %s", status, http.StatusText(status)),
		"error":      map[string]any{"id": id, "message": msg},
		"path":       path,
	}
}

// malformedBody is a plausible start of the endpoint's body, cut short.
func malformedBody(ep Endpoint) string {
	switch ep {
	case EndpointToken:
		return `{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ`
	case EndpointUsers:
		return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":3,"Resources":[{"id":`
	}
	return `{"status":`
}

// writeOversized streams valid JSON of about size bytes without a
// Content-Length, so only a client-side cap protects the reader.
func writeOversized(w http.ResponseWriter, size int) {
	if size <= 0 {
		size = DefaultOversizedBytes
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"padding":"`))
	chunk := []byte(strings.Repeat("x", 32<<10))
	for left := size; left > 0; left -= len(chunk) {
		n := min(left, len(chunk))
		if _, err := w.Write(chunk[:n]); err != nil {
			return
		}
	}
	_, _ = w.Write([]byte(`"}`))
}

// dropConnection closes the client's connection without a response.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (e.g. HTTP/2 behind Handler()): abort the stream.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// captureWriter keeps a response back: for one never sent (drop-after) or
// sent later, garbled or cut (hold, wrong-types, truncate).
type captureWriter struct {
	h    http.Header
	code int
	buf  bytes.Buffer
}

func (d *captureWriter) Header() http.Header { return d.h }
func (d *captureWriter) WriteHeader(code int) {
	if d.code == 0 {
		d.code = code
	}
}
func (d *captureWriter) Write(p []byte) (int, error) { return d.buf.Write(p) }

func (d *captureWriter) status() int {
	if d.code == 0 {
		return http.StatusOK
	}
	return d.code
}
