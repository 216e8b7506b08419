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
	AccessToken Secret
	TokenType   string
	// ExpiresAt is now + expires_in.
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
	Scope               string
	// CorrelationID is the concur-correlationid header of the response.
	CorrelationID string
}

// UserQuery narrows the attributes of an Identity v4 user read.
type UserQuery struct {
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
	StartIndex         int
	Attributes         []string
	ExcludedAttributes []string
}

// UserList is the SCIM ListResponse of Identity v4.
type UserList struct {
	Schemas      []string         `json:"schemas"`
	TotalResults int              `json:"totalResults"`
	StartIndex   int              `json:"startIndex"`
	ItemsPerPage int              `json:"itemsPerPage"`
	Resources    []map[string]any `json:"Resources"`
}
