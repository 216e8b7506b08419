package concurtest

import (
	"fmt"
	"strings"
	"time"
)

// User is the identifying part of a simulated Identity user.
type User struct {
	ID             string `json:"id"`
	UserName       string `json:"userName"`
	EmployeeNumber string `json:"employeeNumber"`
	ExternalID     string `json:"externalId"`
}

// SCIM schema URNs used in Identity v4 bodies.
const (
	SchemaCoreUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaEnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaSAPUser        = "urn:ietf:params:scim:schemas:extension:sap:2.0:User"
	SchemaListResponse   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaError          = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// simUser is a generated user; everything is derived from the company UUID
// and the 1-based index, so ids are stable across runs and processes.
type simUser struct {
	User
	index              int
	company            string
	givenName, family  string
	active             bool
	sapUUID            string
	created, modified  time.Time
	title, costCenter  any // string or nil: real data has many nulls
	department, mobile any
	// extra holds top-level attributes set with SetUserAttributes (custom
	// schema extensions, or hostile keys in tests); they override the rest.
	extra map[string]any
}

// companyLabel is a DNS-safe short form of the company UUID for user names.
func companyLabel(companyUUID string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(companyUUID) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
			if b.Len() == 8 {
				break
			}
		}
	}
	if b.Len() == 0 {
		return "company"
	}
	return b.String()
}

func generateUsers(companyUUID string, n int) []*simUser {
	given := []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken", "Radia"}
	family := []string{
		"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Hamilton", "Thompson", "Perlman", "Ritchie", "Kay",
	}
	titles := []any{"Analyst", nil, "Engineer", "Manager", nil}
	label := companyLabel(companyUUID)
	base := time.Date(2021, 11, 17, 22, 44, 9, 164000, time.UTC)
	users := make([]*simUser, 0, max(n, 0))
	for i := 1; i <= n; i++ {
		u := &simUser{
			User: User{
				ID:             seededUUID(fmt.Sprintf("concur-sim/user/%s/%d", companyUUID, i)),
				UserName:       fmt.Sprintf("user%04d@%s.example", i, label),
				EmployeeNumber: fmt.Sprintf("1%05d", i),
				ExternalID:     fmt.Sprintf("ext-%s-%04d", label, i),
			},
			index:     i,
			company:   companyUUID,
			givenName: given[i%len(given)],
			family:    family[i%len(family)],
			// Every seventh user is inactive, as real directories have leavers.
			active:   i%7 != 0,
			sapUUID:  seededUUID(fmt.Sprintf("concur-sim/sap/%s/%d", companyUUID, i)),
			created:  base.Add(time.Duration(i) * time.Hour),
			modified: base.Add(time.Duration(i)*time.Hour + 4*time.Minute + 22*time.Second),
			title:    titles[i%len(titles)],
		}
		if i%3 != 0 {
			u.costCenter = fmt.Sprintf("CC-%03d", 100+i%4)
			u.department = []string{"Finance", "Engineering", "Sales", "Operations"}[i%4]
		}
		if i%2 == 0 {
			u.mobile = fmt.Sprintf("+1 555 01%02d", i%100)
		}
		users = append(users, u)
	}
	return users
}

// resource renders the full SCIM user (every attribute, before scope
// filtering and projection) in the shape of reference section 7.4: nulls
// are present as JSON null, not omitted. usersURL is the data centre's
// Users collection of the version asked (meta.location echoes it).
func (u *simUser) resource(usersURL string, manager *simUser) map[string]any {
	display := u.givenName + " " + u.family
	phones := []any{}
	if u.mobile != nil {
		phones = append(phones, map[string]any{"type": "mobile", "value": u.mobile, "primary": true, "notifications": false})
	}
	var mgr any
	if manager != nil && manager != u {
		mgr = map[string]any{
			"value":          manager.ID,
			"$ref":           usersURL + "/" + manager.ID,
			"displayName":    manager.givenName + " " + manager.family,
			"employeeNumber": manager.EmployeeNumber,
		}
	}
	var termination any
	if !u.active {
		termination = u.modified.Format("2006-01-02T15:04:05.000")
	}
	full := u.standardAttributes(usersURL, display, phones, mgr, termination)
	for k, v := range u.extra {
		full[k] = v
	}
	return full
}

// standardAttributes is the user in the shape of reference section 7.4.
func (u *simUser) standardAttributes(usersURL, display string, phones []any, mgr, termination any) map[string]any {
	return map[string]any{
		"schemas":     []any{SchemaCoreUser, SchemaEnterpriseUser, SchemaSAPUser},
		"id":          u.ID,
		"externalId":  u.ExternalID,
		"userName":    u.UserName,
		"active":      u.active,
		"displayName": display,
		"name": map[string]any{
			"familyName":       u.family,
			"givenName":        u.givenName,
			"middleName":       nil,
			"honorificPrefix":  nil,
			"honorificSuffix":  nil,
			"familyNamePrefix": nil,
			"formatted":        display,
		},
		"emails": []any{map[string]any{
			"verified": false, "type": "work", "value": u.UserName, "notifications": true,
		}},
		"phoneNumbers":      phones,
		"addresses":         []any{},
		"emergencyContacts": nil,
		"nickName":          nil,
		"title":             u.title,
		"dateOfBirth":       nil,
		"gender":            nil,
		"preferredLanguage": "en-US",
		"timezone":          "America/New_York",
		"entitlements":      []any{},
		"localeOverrides": map[string]any{
			"preferenceDateFormat":             "mm/dd/yyyy",
			"preferenceStartDayViewHour":       8,
			"preferenceEndDayViewHour":         20,
			"preferenceNegativeNumberFormat":   nil,
			"preferenceNegativeCurrencyFormat": nil,
			"preferenceCurrencySymbolLocation": "BeforeAmount",
			"preferenceFirstDayOfWeek":         "Sunday",
			"preferenceDefaultCalView":         "month",
			"preference24Hour":                 "HH:mm",
			"preferenceHourMinuteSeparator":    ":",
			"preferenceDistance":               "mile",
			"preferenceNumberFormat":           "0,000.00",
		},
		"meta": map[string]any{
			"resourceType": "User",
			"created":      u.created.Format("2006-01-02T15:04:05.000000Z"),
			"lastModified": u.modified.Format("2006-01-02T15:04:05.000000Z"),
			"version":      4,
			"location":     usersURL + "/" + u.ID,
		},
		SchemaEnterpriseUser: map[string]any{
			"companyId":       u.company,
			"employeeNumber":  u.EmployeeNumber,
			"costCenter":      u.costCenter,
			"department":      u.department,
			"division":        nil,
			"orgUnit":         nil,
			"organization":    "Company " + companyLabel(u.company),
			"manager":         mgr,
			"startDate":       u.created.Format("2006-01-02") + "T00:00:00.000",
			"terminationDate": termination,
		},
		SchemaSAPUser: map[string]any{
			"userUuid": u.sapUUID,
		},
	}
}

// SetUserAttributes gives a user extra top-level attributes, as a custom
// schema extension would (a nil value removes one). The token's scopes do
// not hide them. Tests use it to send attribute names a proxy must not
// trust, such as Vault's "http_status_code". It reports whether the user exists.
func (s *Server) SetUserAttributes(companyUUID, userID string, attrs map[string]any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	users := s.usersLocked(companyUUID)
	for i, u := range users {
		if !strings.EqualFold(u.ID, userID) {
			continue
		}
		// Copy on write: requests render users outside the lock from the
		// slice they took, so a published user is never changed.
		changed := *u
		changed.extra = make(map[string]any, len(u.extra)+len(attrs))
		for k, v := range u.extra {
			changed.extra[k] = v
		}
		for k, v := range attrs {
			if v == nil {
				delete(changed.extra, k)
			} else {
				changed.extra[k] = v
			}
		}
		next := append([]*simUser(nil), users...)
		next[i] = &changed
		s.users[companyUUID] = next
		return true
	}
	return false
}

// extraAttributeNames lists the extra attributes any of users carries.
func extraAttributeNames(users []*simUser) []string {
	var names []string
	seen := map[string]bool{}
	for _, u := range users {
		for k := range u.extra {
			if !seen[k] {
				seen[k] = true
				names = append(names, k)
			}
		}
	}
	return names
}
