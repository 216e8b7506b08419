package concur

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Identity answers of any status, content type and body: GetUser and
// FindUsers never panic, classify the status as documented, never put the
// bearer token in an error, and only succeed with a decoded object.
func FuzzIdentityResponses(f *testing.F) {
	f.Add(uint16(200), "application/json", []byte(`{"id":"3df11695-e8bb-40ff-8e98-c85913ab2789","userName":"a@b.example"}`))
	f.Add(uint16(200), "application/scim+json", []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,"Resources":[{"id":"x"}]}`))
	f.Add(uint16(200), "text/html", []byte(`<html>maintenance</html>`))
	f.Add(uint16(200), "application/json", []byte(`null`))
	f.Add(uint16(200), "application/json", []byte(`{"Resources":"not a list","totalResults":"1"}`))
	f.Add(uint16(401), "application/json", []byte(`{"errorId":"UNAUTHORIZED","errorMessage":"Bearer secret-bearer-1234567890"}`))
	f.Add(uint16(404), "application/scim+json", []byte(`{"status":"404","scimType":"","detail":"User not found"}`))
	f.Add(uint16(302), "text/plain", []byte(`elsewhere`))
	f.Add(uint16(429), "application/json", []byte(`{"error":{"id":"security.rate.limit.reached","message":"Too many requests"}}`))
	f.Add(uint16(503), "", []byte{})

	const bearer = "secret-bearer-1234567890"
	var mu sync.Mutex
	var status int
	var ctype string
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s, ct, b := status, ctype, body
		mu.Unlock()
		if ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		if s >= 300 && s < 400 {
			w.Header().Set("Location", "http://localhost:1/elsewhere")
		}
		w.WriteHeader(s)
		_, _ = w.Write(b)
	}))
	f.Cleanup(srv.Close)
	c, err := New(Options{HTTPClient: srv.Client(), AllowedHosts: []string{"http://127.0.0.1:*"}, Timeout: 5 * time.Second,
		Retry: RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, st uint16, contentType string, b []byte) {
		s := 200 + int(st)%400
		if s == 204 || s == 304 {
			b = nil // no body allowed
		}
		// A header value the server cannot send would test net/http, not the client.
		if strings.IndexFunc(contentType, func(r rune) bool { return r < 0x20 || r >= 0x7f }) >= 0 {
			contentType = ""
		}
		mu.Lock()
		status, ctype, body = s, contentType, b
		mu.Unlock()
		ctx := context.Background()
		user, uerr := c.GetUser(ctx, srv.URL, NewSecret(bearer), "3df11695-e8bb-40ff-8e98-c85913ab2789", UserQuery{})
		list, lerr := c.FindUsers(ctx, srv.URL, NewSecret(bearer), UserFilter{Attribute: FilterUserName, Value: "a"})
		for _, e := range []error{uerr, lerr} {
			if e == nil {
				continue
			}
			if strings.Contains(e.Error(), bearer) {
				t.Fatalf("error shows the bearer token: %v", e)
			}
			var ce *Error
			if !errors.As(e, &ce) {
				t.Fatalf("not a *concur.Error: %v", e)
			}
			want := ClassInvalidRequest
			switch {
			case s == 401 || s == 403:
				want = ClassUnauthorized
			case s < 300, s == 408, s == 429, s >= 500:
				want = ClassTransient
			case s < 400:
				want = ClassPermanent
			}
			if ce.Class != want {
				t.Fatalf("status %d classed %s, want %s", s, ce.Class, want)
			}
		}
		if uerr == nil && (s < 200 || s >= 300 || user == nil) {
			t.Fatalf("status %d: GetUser succeeded with %v", s, user)
		}
		if lerr == nil && (s < 200 || s >= 300 || list == nil) {
			t.Fatalf("status %d: FindUsers succeeded with %v", s, list)
		}
	})
}
