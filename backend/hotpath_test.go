package backend

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The per-request work of a creds read that the profile under load showed
// and a minimal plugin does not do (docs/performance.md, "Where the time
// goes"): these tests keep it away.

// Every path the engine serves reaches the handler it is named for, and the
// creds paths are tried first: the framework tries the patterns in order,
// and the hot path paid for every pattern before it (docs/performance.md).
func TestRoutingPutsCredsFirst(t *testing.T) {
	b := newBackend(options{})
	name := `companies/(?P<name>\w(([\w-.]+)?\w)?)`
	for path, want := range map[string]string{
		"creds":                      "creds",
		"companies/acme/creds":       name + "/creds",
		"companies/acme.co-1/creds":  name + "/creds",
		"config":                     "config",
		"metrics":                    "metrics",
		"companies/":                 "companies/?$",
		"companies/acme":             name,
		"companies/creds":            name,
		"rotate":                     "rotate",
		"companies/acme/rotate":      name + "/rotate",
		"profile/u-1":                "profile/(?P<id>.+)",
		"profile/creds":              "profile/(?P<id>.+)",
		"profile":                    "profile/?$",
		"companies/acme/profile/u-1": name + "/profile/(?P<id>.+)",
		"companies/acme/profile":     name + "/profile/?$",
	} {
		p := b.Route(path)
		if p == nil || p.Pattern != "^"+strings.TrimSuffix(want, "$")+"$" {
			got := "nothing"
			if p != nil {
				got = p.Pattern
			}
			t.Errorf("%s is routed to %s, want %s", path, got, want)
		}
	}
	for i, want := range []string{"^creds$", "^" + name + "/creds$"} {
		if got := b.Paths[i].Pattern; got != want {
			t.Errorf("path %d is %s, want %s", i, got, want)
		}
	}
}

// The company a path names is the capture, read as it is: a value in the
// request body does not replace it, a non-string is an invalid name (never
// the default company), and a path without a name is the default company.
// Reading it costs no allocation (GetOk decoded it through mapstructure).
func TestPathNameIsTheCaptureAsIs(t *testing.T) {
	b := newBackend(options{})
	scoped := b.Route("companies/acme/creds")
	root := b.Route("creds")
	fd := func(p *framework.Path, raw map[string]any) *framework.FieldData {
		return &framework.FieldData{Raw: raw, Schema: p.Fields}
	}
	if name, resp := companyNameOf(fd(scoped, map[string]any{"name": "acme"})); name != "acme" || resp != nil {
		t.Errorf("companies/acme/...: %q, %v", name, resp)
	}
	if name, resp := companyNameOf(fd(root, map[string]any{"name": "acme"})); name != defaultCompanyName || resp != nil {
		t.Errorf("a root path with name=acme in its data: %q, %v; want the default company", name, resp)
	}
	if name, resp := companyNameOf(fd(scoped, map[string]any{"name": 7})); name != "" || resp == nil || !resp.IsError() {
		t.Errorf("a non-string name: %q, %v; want a field error", name, resp)
	}
	d := fd(scoped, map[string]any{"name": "acme"})
	if n := testing.AllocsPerRun(100, func() { companyNameOf(d) }); n != 0 && !raceEnabled {
		t.Errorf("reading the company name allocates %v times, want 0", n)
	}
}

// A request's outcome label costs no allocation when there is no error.
func TestRequestOutcome(t *testing.T) {
	for _, tc := range []struct {
		resp *logical.Response
		err  error
		want string
	}{
		{&logical.Response{}, nil, outcomeOK},
		{nil, nil, outcomeOK},
		{logical.ErrorResponse("bad"), nil, "client_error"},
		{nil, logical.CodedError(http.StatusNotFound, "no such company"), "client_error"},
		{nil, logical.CodedError(http.StatusBadGateway, "Concur said 503"), "server_error"},
		{nil, logical.ErrPermissionDenied, "client_error"},
		{nil, logical.ErrReadOnly, "forwarded"},
		{nil, errors.New("boom"), "server_error"},
	} {
		if got := requestOutcome(tc.resp, tc.err); got != tc.want {
			t.Errorf("requestOutcome(%v, %v) = %s, want %s", tc.resp, tc.err, got, tc.want)
		}
	}
	resp := &logical.Response{}
	if n := testing.AllocsPerRun(100, func() { requestOutcome(resp, nil) }); n != 0 && !raceEnabled {
		t.Errorf("requestOutcome of a success allocates %v times, want 0", n)
	}
}

// A warm companies/<name>/creds read through the backend's own request
// handling, next to BenchmarkCredsReadWarm's root creds: what a partner's
// app pays per read beyond the default company's.
func BenchmarkCompanyCredsReadWarm(b *testing.B) {
	e := newBenchEnv(b)
	e.connect("acme", 1, "")
	req := &logical.Request{Operation: logical.ReadOperation, Path: "companies/acme/creds", Storage: e.storage}
	ctx := context.Background()
	before := e.sim.GrantCalls("refresh_token")
	b.ReportAllocs()
	for b.Loop() {
		resp, err := e.b.HandleRequest(ctx, req)
		if err != nil || resp.Data["access_token"] == "" {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := e.sim.GrantCalls("refresh_token") - before; n != 0 {
		b.Fatalf("%d Concur token calls during warm reads, want 0", n)
	}
}
