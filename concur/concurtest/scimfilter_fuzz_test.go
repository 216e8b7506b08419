package concurtest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// Any filter text either parses or is refused with a concur.FilterError;
// parsing and matching never panic, the bounds hold, and an accepted
// filter printed back from its syntax tree parses again and matches the same
// users (so parsing, Concur's dialect and canonical names lose nothing).
func FuzzSearchFilter(f *testing.F) {
	for _, seed := range []string{
		`active eq true`, `emails[type eq "work" and value ew "@x"]`, `not(name.givenName co "a") and name.givenName pr`,
		`id eq 3df11695-e8bb-40ff-8e98-c85913ab2789`, `((((userName sw "u"))))`, `emails[value sw "C" and value ew "S"]`,
		`meta.lastModified gt "2011-05-13T04:42:34Z" or urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:startDate le 2018-12-31`, `userName eq "a\"b"`,
		`"`, `[`, `a eq`, strings.Repeat("(", 40) + "active eq true" + strings.Repeat(")", 40),
	} {
		f.Add(seed)
	}
	users := generateUsers(testCompany, 8)
	f.Fuzz(func(t *testing.T, text string) {
		sf, err := parseSearchFilter(text)
		if err != nil {
			if fe := (*concur.FilterError)(nil); !errors.As(err, &fe) {
				t.Fatalf("%q: error of type %T", text, err)
			}
			return
		}
		if len(text) > concur.MaxSearchFilterLength {
			t.Fatalf("a filter of %d characters was accepted", len(text))
		}
		if !printableASCII(text) {
			return // the library prints strings Go-quoted, which differs from JSON beyond ASCII
		}
		printed := fmt.Sprint(sf.expr)
		again, err := parseSearchFilter(printed)
		if err != nil {
			if len(printed) > concur.MaxSearchFilterLength {
				return
			}
			t.Fatalf("%q printed as %q no longer parses: %v", text, printed, err)
		}
		for _, u := range users {
			res := u.resource("http://sim"+usersPathV41, users[0])
			if sf.match(res) != again.match(res) {
				t.Fatalf("%q and its printed form %q disagree on user %d", text, printed, u.index)
			}
		}
	})
}

func printableASCII(s string) bool {
	for _, c := range s {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
}
