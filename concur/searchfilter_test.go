package concur_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// The filters of SAP's search guide (D-SRCH) and of SAP's user-provisioning
// Postman collection parse, spelt canonically; Concur's documented limits
// are refused with a reason.
func TestParseSearchFilter(t *testing.T) {
	const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	accepted := map[string]string{
		`active eq true and emails.value ew "@sap.com"`:                                  `active eq true and emails.value ew "@sap.com"`,
		ent + `:employeeNumber eq "cteadmin@p1203564elir.com"`:                           ent + `:employeeNumber eq "cteadmin@p1203564elir.com"`,
		ent + `:startDate le 2018-12-31`:                                                 ent + `:startDate le "2018-12-31"`,
		`ID EQ 3df11695-e8bb-40ff-8e98-c85913ab2789`:                                     `id eq "3df11695-e8bb-40ff-8e98-c85913ab2789"`,
		`id eq aa076ada-80a9-4f57-8e98-9300b1c3171d`:                                     `id eq "aa076ada-80a9-4f57-8e98-9300b1c3171d"`,
		`Emails[Type eq "work" or value sw "admin" or verified eq false]`:                `emails[type eq "work" or value sw "admin" or verified eq false]`,
		`emails[type eq "work" and value ew "@x" or type eq "home" and value ew ".com"]`: `emails[type eq "work" and value ew "@x" or type eq "home" and value ew ".com"]`,
		`name[givenName ne "John" and not(givenName eq "Bob")]`:                          `name[givenName ne "John" and not(givenName eq "Bob")]`,
		`entitlements eq "invoice"`:                                                      `entitlements eq "invoice"`,
		`userName eq "a\"b"`:                                                             `userName eq "a\"b"`,
		ent + `:manager.value pr`:                                                        ent + `:manager.value pr`,
		`(emails[type eq "work"]) or userName sw "x"`:                                    `emails[type eq "work"] or userName sw "x"`,
	}
	for in, want := range accepted {
		e, err := concur.ParseSearchFilter(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := fmt.Sprint(e); got != want {
			t.Errorf("%s: parsed as %s, want %s", in, got, want)
		}
	}
	refused := map[string]string{
		``:                            "empty",
		`emails[not(type eq "work")]`: "not is not allowed",
		`emails[type ne "work"]`:      "operator ne is not allowed",
		`emails[type eq "work" and (value sw "a" or value sw "b")]`: "or may not be nested",
		`emails[value sw "a" and value ew "b"]`:                     "may not be and-ed with itself",
		`emails[type eq "work" and value gt "a"]`:                   "operator gt",
		`emails[type eq "work"`:                                     "without ]",
		`emails[name[givenName eq "a"]]`:                            "may not be nested",
		`password eq "x"`:                                           "not an attribute",
		`emails.display eq "x"`:                                     "not an attribute",
		`urn:example:Other:thing eq "x"`:                            "unknown schema",
		`zzConcurGrouping0 pr`:                                      "not an attribute",
		`userName eq "open`:                                         "unterminated string",
		`userName eq`:                                               "not a SCIM filter",
		strings.Repeat("(", 17) + "active eq true" + strings.Repeat(")", 17):      "nested more than",
		`userName eq "` + strings.Repeat("a", concur.MaxSearchFilterLength) + `"`: "longer than",
	}
	for in, want := range refused {
		_, err := concur.ParseSearchFilter(in)
		var fe *concur.FilterError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), want) {
			t.Errorf("%.60s: got %v, want a FilterError saying %q", in, err, want)
		}
	}
}
