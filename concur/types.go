package concur

import (
	"time"
)

// DefaultBaseURL is the host of the first company-token request when the
// operator names none: the Global Landing Zone, where the Authentication
// reference (since January 2025) sends the password grant with
// credtype=authtoken. It answers with the company's geolocation, and later
// calls go there. Older setups may still name us.api.concursolutions.com.
const DefaultBaseURL = "https://glz.api.concursolutions.com"

// DefaultAllowedHost is where tokens may be sent when the operator names nothing.
const DefaultAllowedHost = "https://*.concursolutions.com"

// Credentials identify the OAuth2 client (the app registered with Concur).
type Credentials struct {
	ClientID     string
	ClientSecret Secret
}

// Token is a decoded token-endpoint response. Absolute times come from the
// client's clock at the moment the response arrived.
type Token struct {
	// AccessToken is zero when the answer carried only a refresh token.
	AccessToken Secret
	TokenType   string
	// ExpiresAt is now + expires_in (an hour when expires_in is absent or
	// unusable); zero when there is no access token.
	ExpiresAt time.Time
	// RefreshToken is the one Concur returned, or the one that was presented
	// when the response carried none.
	RefreshToken Secret
	// RefreshExpiresAt is refresh_expires_in (absolute Unix seconds); zero when absent.
	RefreshExpiresAt time.Time
	// Geolocation is the normalised base URL (scheme://host[:port]) to use from
	// now on; "" when the response named none or one that is not a URL.
	Geolocation string
	// UnusableGeolocation is what the response named when it was not a usable
	// URL (cleaned of control characters, shortened), so callers can say so.
	UnusableGeolocation string
	IDToken             Secret
	// Subject is the id_token's `sub` claim (the company UUID for a company
	// token), read without verifying the signature; "" when there is no
	// id_token or its claims cannot be read (then Warnings says so).
	Subject string
	Scope   string
	// CorrelationID is the concur-correlationid header of the response.
	CorrelationID string
	// Warnings name the response fields that were present but unusable and
	// therefore ignored (a field name and a JSON type, never a value).
	Warnings []string
}

// Identity API versions for UserQuery.Version.
const (
	IdentityV4  = "v4"
	IdentityV41 = "v4.1"
)

// UserQuery narrows the attributes of an Identity user read.
type UserQuery struct {
	Attributes         []string
	ExcludedAttributes []string
	// Version is IdentityV4 ("" too) or IdentityV41.
	Version string
}

// UserPage asks for one page of the company's users (Identity v4.1 GET
// /Users): no filter, cursor paging.
type UserPage struct {
	// Count is the page size (1..1000; 0 means Concur's default of 100).
	Count int
	// Cursor is the previous page's NextCursor; "" asks for the first page.
	Cursor             string
	Attributes         []string
	ExcludedAttributes []string
}

// SearchRequest is an Identity v4.1 search (POST /Users/.search); Filter
// is a SCIM filter expression ("" lists everyone).
type SearchRequest struct {
	Filter             string
	Count              int // 1..1000; 0 means Concur's default of 100
	Cursor             string
	Attributes         []string
	ExcludedAttributes []string
}

// Filter attributes Identity v4 supports in `filter=<attr> eq "<value>"`.
const (
	FilterUserName       = "userName"
	FilterEmployeeNumber = "employeeNumber"
	FilterExternalID     = "externalId"
)

// UserFilter is an Identity v4 list query: exactly one attribute compared with eq.
type UserFilter struct {
	Attribute string // one of the Filter* constants
	Value     string
	// Count is the page size (1..100; 0 means Concur's default of 10).
	Count int
	// StartIndex is 1-based (0 means Concur's default of 1).
	StartIndex int
	// CompanyID, when set, is sent as companyId: the v4 reference marks it
	// required together with employeeNumber (other pages and captures
	// filter by employeeNumber alone).
	CompanyID          string
	Attributes         []string
	ExcludedAttributes []string
}

// UserList is the SCIM ListResponse of Identity v4 and v4.1.
type UserList struct {
	Schemas      []string `json:"schemas"`
	TotalResults int      `json:"totalResults"`
	// StartIndex is 0 when the answer has none (Identity v4.1 GET lists).
	StartIndex   int              `json:"startIndex"`
	ItemsPerPage int              `json:"itemsPerPage"`
	Resources    []map[string]any `json:"Resources"`
	// NextCursor (v4.1) fetches the next page; "" on the last page.
	NextCursor string `json:"nextCursor"`
}
