package concurtest

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Endpoint names a simulated API for faults and counters.
type Endpoint string

const (
	EndpointToken       Endpoint = "token"       // POST /oauth2/v0/token
	EndpointUsers       Endpoint = "users"       // GET /profile/identity/v4/Users[/{id}]
	EndpointConnections Endpoint = "connections" // DELETE /app-mgmt/v0/connections
)

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
)

func (k FaultKind) valid() bool {
	switch k {
	case FaultStatus, FaultDelay, FaultMalformedJSON, FaultOversized, FaultDrop, FaultDropAfter:
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
	Status     int           // FaultStatus; 0 -> 503
	RetryAfter string        // FaultStatus: Retry-After header value; "" -> none
	Delay      time.Duration // FaultDelay
	Size       int           // FaultOversized: body bytes; 0 -> DefaultOversizedBytes
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
	if !f.Kind.valid() {
		panic(fmt.Sprintf("concurtest: unknown fault kind %q", f.Kind))
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
	f, ok := s.faults.take(ep)
	if !ok {
		s.serve(w, r, ep, c)
		return ""
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
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
			s.serve(w, r, ep, c)
		case <-r.Context().Done():
			return string(f.Kind) + " (client gone)"
		}
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
		s.serve(&discardWriter{h: http.Header{}}, r, ep, c)
		dropConnection(w)
	}
	return string(f.Kind)
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

// discardWriter swallows a response that is never going to be sent.
type discardWriter struct {
	h   http.Header
	buf bytes.Buffer
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { return d.buf.Write(p) }
