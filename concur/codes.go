package concur

import "errors"

// Concur's OAuth2 error codes: the `code` of a token-endpoint error body
// (Authentication reference, "Response Codes", /token and /otp tables, plus
// the company-auth codes of the newer docs: 134, 135, 136, 139).
const (
	CodeIncorrectCredentials   = 5   // invalid_grant: bad client secret, or bad/expired/used-up request token
	CodeAccountDisabled        = 10  // invalid_grant
	CodeAccountDisabled11      = 11  // invalid_grant (same text as 10)
	CodeLogonDenied            = 12  // invalid_grant
	CodeLogonDenied13          = 13  // invalid_grant (same text as 12)
	CodeAccountLocked          = 14  // invalid_grant
	CodeWrongDataCenter        = 16  // invalid_request: "user lives elsewhere" + geolocation
	CodeIncorrectCredentials19 = 19  // invalid_grant (same text as 5)
	CodeLogonDeniedIP          = 20  // invalid_grant: typically an IP restriction
	CodeNoUsername             = 51  // invalid_request
	CodeNoPassword             = 52  // invalid_request
	CodeCompanyNotEnabled      = 53  // invalid_client
	CodeScopeExceeded          = 54  // invalid_scope
	CodeUnknownEmail           = 55  // invalid_request
	CodeNoOTP                  = 56  // invalid_request
	CodeNoChannelType          = 57  // invalid_request
	CodeNoChannelHandle        = 58  // invalid_request
	CodeClientDisabled         = 59  // access_denied
	CodeGrantNotAllowed        = 60  // invalid_grant: "these are not the grants you are looking for"
	CodeClientNotFound         = 61  // invalid_client
	CodeNoClientID             = 62  // invalid_request
	CodeNoClientSecret         = 63  // invalid_request
	CodeBadClientSecret        = 64  // invalid_client: "Incorrect credentials"
	CodeNoGrantType            = 65  // invalid_request
	CodeBadChannelType         = 80  // invalid_request
	CodeBadChannelHandle       = 81  // invalid_request
	CodeTooManyOTPRequests     = 82  // invalid_request (/otp)
	CodeOTPNotFound            = 83  // invalid_request
	CodeFactVerificationFailed = 84  // invalid_request
	CodeOTPVerificationFailed  = 85  // invalid_request
	CodeUnknownUsername        = 100 // invalid_request: "backend does not know about this username"
	CodeNoAuthorizationCode    = 101 // invalid_request
	CodeNoRedirectURI          = 102 // invalid_request
	CodeBadAuthorizationCode   = 103 // invalid_request
	CodeRedirectURIMismatch    = 104 // invalid_grant
	CodeGrantNotIssuedToYou    = 105 // invalid_grant
	CodeNoRefreshToken         = 106 // invalid_request
	CodeRefreshDisallowed      = 107 // invalid_request
	CodeBadRefreshToken        = 108 // invalid_grant: bad, expired or revoked refresh token
	CodeNoLoginID              = 109 // invalid_request
	CodeUnauthenticatedClient  = 115 // invalid_request
	CodeNonceRequired          = 117 // invalid_request
	CodeBadDisplay             = 118 // invalid_request
	CodeBadPrompt              = 119 // invalid_request
	CodeBadCredtype            = 120 // invalid_request
	CodeBadLoginType           = 121 // invalid_request
	CodeBadProxies             = 122 // invalid_request
	CodePrincipalDisabled      = 123 // invalid_request
	CodeMaintenance            = 134 // invalid_request: company undergoing scheduled maintenance
	CodeUnsupportedFormat      = 135 // invalid_request: not a form body
	CodeAuthtokenNotForYou     = 136 // invalid_request: request token issued to another client
	CodePasswordMustChange     = 139 // invalid_request
)

// OAuthCode is one row of Concur's error-code table and what the client
// makes of it.
type OAuthCode struct {
	Code        int
	Error       string // the OAuth2 `error` Concur sends with it
	Description string // Concur's documented error_description
	// Class is how decodeOAuthError classifies a 4xx carrying the code.
	Class Class
	// RefusedForGood: Concur refuses the credentials themselves (refresh
	// token, request token, client, company, principal); only an operator
	// can help. Codes about the shape of our request, or an unexpected flow
	// (otp, authorization code), are permanent for the call but say nothing
	// about the stored tokens.
	RefusedForGood bool
}

// oauthCodes is the classification table: the single place that says what
// a Concur code means for retries and for needs_bootstrap.
var oauthCodes = func() map[int]OAuthCode {
	const (
		grant  = "invalid_grant"
		req    = "invalid_request"
		client = "invalid_client"
	)
	refused := func(code int, e, d string) OAuthCode {
		return OAuthCode{Code: code, Error: e, Description: d, Class: ClassPermanent, RefusedForGood: true}
	}
	permanent := func(code int, e, d string) OAuthCode {
		return OAuthCode{Code: code, Error: e, Description: d, Class: ClassPermanent}
	}
	rows := []OAuthCode{
		refused(CodeIncorrectCredentials, grant, "Incorrect credentials. Please Retry"),
		refused(CodeAccountDisabled, grant, "Account is disabled. Please contact support"),
		refused(CodeAccountDisabled11, grant, "Account is disabled. Please contact support"),
		refused(CodeLogonDenied, grant, "Logon Denied. Please contact support"),
		refused(CodeLogonDenied13, grant, "Logon Denied. Please contact support"),
		refused(CodeAccountLocked, grant, "Account Locked. Please contact support"),
		{Code: CodeWrongDataCenter, Error: req, Description: "user lives elsewhere", Class: ClassRedirect},
		refused(CodeIncorrectCredentials19, grant, "Incorrect credentials. Please Retry"),
		refused(CodeLogonDeniedIP, grant, "Logon Denied. Please contact support (typically due to IP restriction)"),
		permanent(CodeNoUsername, req, "username was not supplied"),
		permanent(CodeNoPassword, req, "password was not supplied"),
		refused(CodeCompanyNotEnabled, client, "company is not enabled for this client"),
		permanent(CodeScopeExceeded, "invalid_scope", "requested scope exceeds granted scope"),
		permanent(CodeUnknownEmail, req, "we don't know this email"),
		permanent(CodeNoOTP, req, "otp was not supplied"),
		permanent(CodeNoChannelType, req, "channel_type missing"),
		permanent(CodeNoChannelHandle, req, "channel_handle missing"),
		refused(CodeClientDisabled, "access_denied", "client disabled"),
		refused(CodeGrantNotAllowed, grant, "these are not the grants you are looking for"),
		refused(CodeClientNotFound, client, "client not found"),
		permanent(CodeNoClientID, req, "client_id was not supplied"),
		permanent(CodeNoClientSecret, req, "client_secret was not supplied"),
		refused(CodeBadClientSecret, client, "Incorrect credentials. Please Retry"),
		permanent(CodeNoGrantType, req, "grant_type was not supplied"),
		permanent(CodeBadChannelType, req, "invalid channel type"),
		permanent(CodeBadChannelHandle, req, "bad channel handle"),
		permanent(CodeTooManyOTPRequests, req, "the number of open otp requests has been exceeded"),
		permanent(CodeOTPNotFound, req, "otp not found"),
		permanent(CodeFactVerificationFailed, req, "fact verification failed"),
		permanent(CodeOTPVerificationFailed, req, "otp verification failed"),
		refused(CodeUnknownUsername, req, "backend does not know about this username"),
		permanent(CodeNoAuthorizationCode, req, "code was not supplied"),
		permanent(CodeNoRedirectURI, req, "redirect_uri was not supplied"),
		permanent(CodeBadAuthorizationCode, req, "code is bad or expired"),
		permanent(CodeRedirectURIMismatch, grant, "redirect_uri does not match the previous grant"),
		refused(CodeGrantNotIssuedToYou, grant, "this grant was not issued to you!"),
		permanent(CodeNoRefreshToken, req, "refresh_token was not supplied"),
		refused(CodeRefreshDisallowed, req, "refresh disallowed for app"),
		refused(CodeBadRefreshToken, grant, "bad or expired refresh token"),
		permanent(CodeNoLoginID, req, "loginid was not supplied"),
		refused(CodeUnauthenticatedClient, req, "unauthenticated client will not be issued token!"),
		permanent(CodeNonceRequired, req, "nonce is mandatory for this response_type"),
		permanent(CodeBadDisplay, req, "display is invalid"),
		permanent(CodeBadPrompt, req, "prompt is invalid"),
		permanent(CodeBadCredtype, req, "credtype is invalid"),
		permanent(CodeBadLoginType, req, "login_type is invalid"),
		permanent(CodeBadProxies, req, "proxies supplied are invalid"),
		refused(CodePrincipalDisabled, req, "principal is disabled"),
		// Maintenance passes: back off and come again.
		{Code: CodeMaintenance, Error: req, Description: "Company undergoing scheduled maintenance", Class: ClassTransient},
		permanent(CodeUnsupportedFormat, req, "unsupported request format"),
		refused(CodeAuthtokenNotForYou, req, "Authtoken was not issued for you"),
		refused(CodePasswordMustChange, req, "Logon Denied. Password must be changed"),
	}
	m := make(map[int]OAuthCode, len(rows))
	for _, r := range rows {
		m[r.Code] = r
	}
	return m
}()

// LookupOAuthCode returns the table row of a Concur OAuth2 error code.
func LookupOAuthCode(code int) (OAuthCode, bool) {
	c, ok := oauthCodes[code]
	return c, ok
}

// OAuthCodes returns every row of the table, in code order.
func OAuthCodes() []OAuthCode {
	out := make([]OAuthCode, 0, len(oauthCodes))
	for code := 0; len(out) < len(oauthCodes); code++ {
		if c, ok := oauthCodes[code]; ok {
			out = append(out, c)
		}
	}
	return out
}

// RefusedForGood reports whether Concur itself refused the credentials for
// good (bad, expired or revoked refresh token; bad client credentials;
// disabled app, company or principal; and the like): a 4xx token-endpoint
// answer in Concur's OAuth2 shape (`error` and a table `code`) whose code
// the table marks so. This is the one definition of "needs an operator".
//
// Anything we cannot attribute to Concur is not: a gateway's uncoded 403 or
// 404 (HTML or empty body), a 401 with no OAuth body, a 3xx, code 16 (even
// one that cannot be followed), an unparseable 2xx, errors raised before
// sending (allow-list) and transport failures. Those are transient or
// degraded: the stored tokens may be fine.
func RefusedForGood(err error) bool {
	var ce *Error
	if !errors.As(err, &ce) || ce.Class != ClassPermanent || ce.StatusCode < 400 || ce.StatusCode >= 500 || ce.ErrorCode == "" {
		return false
	}
	c, ok := oauthCodes[ce.Code]
	return ok && c.RefusedForGood
}

// RefusesClient reports whether Concur refused the app's own credentials
// (unknown or disabled client, wrong client secret): no grant for any of
// the app's companies can succeed until they are fixed, and the companies'
// tokens are not at fault.
func RefusesClient(err error) bool {
	var ce *Error
	if !errors.As(err, &ce) || ce.Class != ClassPermanent || ce.ErrorCode == "" {
		return false
	}
	switch ce.Code {
	case CodeClientNotFound, CodeBadClientSecret, CodeClientDisabled:
		return true
	}
	return false
}
