package concur

import (
	"time"
)

// DefaultBaseURL is the host of the first company-token request when the
// operator names none. Later calls go to the geolocation Concur returns.
const DefaultBaseURL = "https://us.api.concursolutions.com"

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
