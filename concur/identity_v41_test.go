package concur_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
	"github.com/concur-vault/vault-plugin-secrets-concur/concur/concurtest"
)

func TestSimListUsersV41PagesThroughTheCompany(t *testing.T) {
	e := newSimEnv(t, concurtest.Options{Users: 230}, concur.Options{})
	tok := e.exchange(t, e.sim.URL)
	seen := map[any]bool{}
	page := concur.UserPage{Count: 100, Attributes: []string{"userName"}}
	for calls := 1; ; calls++ {
		list, err := e.client.ListUsers(e.ctx, tok.Geolocation, tok.AccessToken, page)
		if err != nil {
			t.Fatalf("page %d: %v", calls, err)
		}
		if list.TotalResults != 230 {
			t.Fatalf("totalResults %d", list.TotalResults)
		}
		for _, u := range list.Resources {
			seen[u["id"]] = true
			if _, ok := u["emails"]; ok {
				t.Fatal("attributes=userName returned emails")
			}
		}
		if list.NextCursor == "" {
			if calls != 3 {
				t.Errorf("%d pages, want 3", calls)
			}
			break
		}
		page.Cursor = list.NextCursor
	}
	if len(seen) != 230 || e.sim.Calls(concurtest.EndpointUsers) != 3 {
		t.Errorf("%d users in %d calls, want 230 in 3", len(seen), e.sim.Calls(concurtest.EndpointUsers))
	}
	// Default page size is Concur's (100).
	list, err := e.client.ListUsers(e.ctx, tok.Geolocation, tok.AccessToken, concur.UserPage{})
	if err != nil || len(list.Resources) != 100 {
		t.Fatalf("default page: %v, %d users", err, len(list.Resources))
	}
	for _, bad := range []concur.UserPage{{Count: 1001}, {Count: -1}, {Cursor: "a b"}, {Cursor: strings.Repeat("x", 5000)}} {
		if _, err := e.client.ListUsers(e.ctx, tok.Geolocation, tok.AccessToken, bad); concur.ClassOf(err) != concur.ClassInvalidRequest {
			t.Errorf("%+v: %v, want an invalid-request error before sending", bad, err)
		}
	}
	if e.sim.Calls(concurtest.EndpointUsers) != 4 {
		t.Errorf("a refused page reached Concur")
	}
}

func TestSimSearchUsersV41(t *testing.T) {
	e := newSimEnv(t, concurtest.Options{Users: 30}, concur.Options{})
	tok := e.exchange(t, e.sim.URL)
	u := e.sim.Users(testCompanyUUID)[4]
	list, err := e.client.SearchUsers(e.ctx, tok.Geolocation, tok.AccessToken, concur.SearchRequest{
		Filter: `userName eq "` + u.UserName + `" or id eq ` + e.sim.Users(testCompanyUUID)[5].ID, Attributes: []string{"userName"}})
	if err != nil {
		t.Fatal(err)
	}
	if list.TotalResults != 2 || list.Resources[0]["id"] != u.ID || list.StartIndex != 1 || list.NextCursor != "" {
		t.Fatalf("search: %+v", list)
	}
	// Paging a search.
	first, err := e.client.SearchUsers(e.ctx, tok.Geolocation, tok.AccessToken, concur.SearchRequest{Filter: "active eq true", Count: 10})
	if err != nil || first.NextCursor == "" {
		t.Fatalf("first page: %v %+v", err, first)
	}
	second, err := e.client.SearchUsers(e.ctx, tok.Geolocation, tok.AccessToken,
		concur.SearchRequest{Filter: "active eq true", Count: 10, Cursor: first.NextCursor})
	if err != nil || second.StartIndex != 11 || second.Resources[0]["id"] == first.Resources[0]["id"] {
		t.Fatalf("second page: %v %+v", err, second)
	}
	// Concur's refusal of a complex grouping carries its messages.
	_, err = e.client.SearchUsers(e.ctx, tok.Geolocation, tok.AccessToken, concur.SearchRequest{Filter: `emails[not(type eq "work")]`})
	var ce *concur.Error
	if !errors.As(err, &ce) || ce.Class != concur.ClassInvalidRequest || ce.StatusCode != 400 || ce.ErrorCode != "invalidFilter" ||
		!strings.Contains(ce.Description, "not") {
		t.Fatalf("refused grouping: %v", err)
	}
}

func TestSimGetUserV41(t *testing.T) {
	e := newSimEnv(t, concurtest.Options{Users: 3}, concur.Options{})
	tok := e.exchange(t, e.sim.URL)
	id := e.sim.Users(testCompanyUUID)[2].ID
	u, err := e.client.GetUser(e.ctx, tok.Geolocation, tok.AccessToken, id, concur.UserQuery{Version: concur.IdentityV41})
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := u["meta"].(map[string]any)
	if loc, _ := meta["location"].(string); !strings.HasSuffix(loc, "/profile/identity/v4.1/Users/"+id) {
		t.Errorf("meta.location %q: not read through v4.1", loc)
	}
	_, err = e.client.GetUser(e.ctx, tok.Geolocation, tok.AccessToken, id, concur.UserQuery{Version: "v9"})
	if concur.ClassOf(err) != concur.ClassInvalidRequest {
		t.Errorf("unknown version: %v", err)
	}
}

// Issue 11 point 1, client side: the company grant at the landing zone
// returns the company's geolocation; a refresh sent to GLZ is redirected
// there (code 16, followed once), and Identity answers there.
func TestSimLandingZone(t *testing.T) {
	e := newSimEnv(t, concurtest.Options{DataCenters: []string{concurtest.LandingZone, "us2", "eu2"}}, concur.Options{})
	e.sim.AddCompany(testCompanyUUID, "eu2")
	glz, eu2 := e.sim.URLOf(concurtest.LandingZone), e.sim.URLOf("eu2")
	tok := e.exchange(t, glz)
	if tok.Geolocation != eu2 {
		t.Fatalf("geolocation %q, want %q", tok.Geolocation, eu2)
	}
	again, err := e.client.Refresh(e.ctx, glz, testCreds, tok.RefreshToken)
	if err != nil || again.Geolocation != eu2 {
		t.Fatalf("refresh through GLZ: %v %+v", err, again)
	}
	if e.sim.CallsAt(concurtest.LandingZone, concurtest.EndpointToken) != 2 || e.sim.CallsAt("eu2", concurtest.EndpointToken) != 1 {
		t.Errorf("token calls: glz %d, eu2 %d; want 2 and 1", e.sim.CallsAt(concurtest.LandingZone, concurtest.EndpointToken),
			e.sim.CallsAt("eu2", concurtest.EndpointToken))
	}
	if _, err := e.client.ListUsers(e.ctx, again.Geolocation, again.AccessToken, concur.UserPage{Count: 1}); err != nil {
		t.Errorf("Identity at the geolocation: %v", err)
	}
	_, err = e.client.ListUsers(e.ctx, glz, again.AccessToken, concur.UserPage{Count: 1})
	if concur.ClassOf(err) != concur.ClassInvalidRequest {
		t.Errorf("Identity at GLZ: %v, want Concur's 404", err)
	}
}
