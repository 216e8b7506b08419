package backend

import (
	"context"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const pathRotateHelpSynopsis = "Renew the company's tokens at Concur now."

const pathRotateHelpDescription = `
Performs a refresh grant at once, whatever the current token's age, and
stores the result. Returns the new expiry times, never a token. Use it to
check the connection, or after Concur support asked for a fresh token. It
also retries after the engine reported needs_bootstrap, in case the cause has
been fixed at Concur.
`

func pathRotate(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "rotate",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "concur",
		},
		Fields: map[string]*framework.FieldSchema{},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathRotateWrite,
				Summary:                     "Renew the tokens now.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb: "rotate",
				},
			},
		},
		HelpSynopsis:    pathRotateHelpSynopsis,
		HelpDescription: strings.TrimSpace(pathRotateHelpDescription),
	}
}

func (b *backend) pathRotateWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	co, resp, err := b.companyToRead(ctx, req.Storage, d)
	if resp != nil || err != nil {
		return resp, err
	}
	st, err := co.rotate(ctx, req.Storage)
	if err != nil {
		return nil, upstreamError(err)
	}
	resp = &logical.Response{Data: map[string]any{
		"access_token_expires_at":  formatTime(st.Token.ExpiresAt),
		"refresh_token_expires_at": formatTime(st.Token.RefreshExpiresAt),
		"last_refresh_at":          formatTime(st.Token.LastRefreshAt),
		"geolocation":              st.Token.Geolocation,
	}}
	for _, w := range tokenWarnings(st.Token) {
		resp.AddWarning(w)
	}
	return resp, nil
}
