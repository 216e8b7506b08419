package concurtest

import (
	"errors"
	"strings"
	"testing"
)

// Any filter text either parses or is refused with a filterError; parsing
// and matching never panic, and the bounds hold.
func FuzzSearchFilter(f *testing.F) {
	for _, seed := range []string{
		`active eq true`, `emails[type eq "work" and value ew "@x"]`, `not(name.givenName co "a") and name.givenName pr`,
		`id eq 3df11695-e8bb-40ff-8e98-c85913ab2789`, `((((userName sw "u"))))`, `emails[value sw "C" and value ew "S"]`,
		`meta.lastModified gt "2011-05-13T04:42:34Z" or urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr`,
		`"`, `[`, `a eq`, strings.Repeat("(", 40) + "active eq true" + strings.Repeat(")", 40),
	} {
		f.Add(seed)
	}
	users := generateUsers(testCompany, 3)
	f.Fuzz(func(t *testing.T, filter string) {
		n, err := parseSearchFilter(filter)
		if err != nil {
			if fe := (*filterError)(nil); !errors.As(err, &fe) {
				t.Fatalf("%q: error of type %T", filter, err)
			}
			return
		}
		if len(filter) > maxFilterLength {
			t.Fatalf("a filter of %d characters was accepted", len(filter))
		}
		for _, u := range users {
			n.match(u.resource("http://sim"+usersPathV41, users[0]))
		}
	})
}
