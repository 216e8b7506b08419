package backend

import (
	"context"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// maxMinTTL keeps min_ttl satisfiable by a fresh one-hour Concur token, so a
// reader cannot make every read a Concur call.
const maxMinTTL = 55 * time.Minute

const pathCredsHelpSynopsis = "Read the company's current Concur bearer token."

const pathCredsHelpDescription = `
Returns the company's cached, multiple-use bearer token (access_token), when
it expires (expires_at), the API host to call with it (geolocation), the
company UUID and the granted scopes.

ttl is the number of seconds until the engine will hand out a different
token (its renewal point, before the token expires), rotation_period the
engine's renewal period in seconds and last_vault_rotation when the served
token was obtained: the fields Vault Agent and the Vault Secrets Operator use
to re-read a rotating secret right after it changes.

All readers share one token: the engine renews it in the background before it
expires, so reading creds does not call Concur. min_ttl (seconds, at most
3300) asks for a token with at least that much life left, renewing first if
needed.

There is no lease: Concur cannot revoke one bearer token on its own. To keep
the token out of intermediaries, read it with response wrapping
(vault read -wrap-ttl=60s concur/creds).
`

func pathCreds(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "creds",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "concur",
		},
		Fields: map[string]*framework.FieldSchema{
			"min_ttl": {
				Type:        framework.TypeDurationSecond,
				Query:       true,
				Description: "Renew first if the current token has less than this left (seconds or a duration such as 30m; at most 55m).",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathCredsRead,
				Summary:  "Read the current bearer token.",
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "read",
					OperationSuffix: "credentials",
				},
			},
		},
		HelpSynopsis:    pathCredsHelpSynopsis,
		HelpDescription: strings.TrimSpace(pathCredsHelpDescription),
	}
}

func (b *backend) pathCredsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	need := minServeTTL
	if len(req.Data) > 0 {
		if resp := rejectUnknownFields(req, d); resp != nil {
			return resp, nil
		}
		raw, ok, err := d.GetOkErr("min_ttl")
		if err != nil {
			return fieldError("min_ttl", "%v", err), nil
		}
		if ok {
			minTTL := secondsField(raw)
			if minTTL > maxMinTTL {
				return fieldError("min_ttl", "must be at most %d seconds: Concur issues one-hour tokens", int(maxMinTTL.Seconds())), nil
			}
			need = max(need, minTTL)
		}
	}
	co, resp, err := b.companyToRead(ctx, req.Storage, d)
	if resp != nil || err != nil {
		return resp, err
	}
	sv, err := co.usable(ctx, req.Storage, need)
	if err != nil {
		return nil, err
	}
	t := sv.entry.Token
	rot := rotationOf(co.name, sv.entry, sv.app.entry.RefreshMargin, b.now())
	resp = &logical.Response{Data: map[string]any{
		"access_token":        t.AccessToken,
		"token_type":          t.TokenType,
		"expires_at":          formatTime(t.ExpiresAt),
		"ttl":                 rot.ttl,
		"rotation_period":     rot.period,
		"last_vault_rotation": formatTime(t.LastRefreshAt),
		"geolocation":         t.Geolocation,
		"company_uuid":        sv.entry.CompanyUUID,
		"scope":               t.Scope,
	}}
	for _, w := range sv.warnings {
		resp.AddWarning(w)
	}
	return resp, nil
}

// minRotationTTL is the smallest ttl creds reports. Once the renewal point
// has passed, the token is replaced by the next periodic run (Vault runs it
// once a minute) or the next read that finds it short of minServeTTL. Agent
// re-reads ttl+1 seconds later and about once a second for ttl 0, so a
// small floor keeps re-reads few until the new token is there, while still
// picking it up within seconds.
const minRotationTTL = 5 * time.Second

// rotation is what creds tells Vault Agent and the Secrets Operator about the
// renewal schedule, in whole seconds: the "rotating static secret" fields.
type rotation struct {
	ttl    int64 // until the engine will serve a different token
	period int64 // a token's lifetime minus the margin it is renewed at
}

// rotationOf derives them from the renewal rule (servedUntil, from
// nextRenewal), so that the ttl and the schedule agree.
func rotationOf(name string, e *companyEntry, refreshMargin time.Duration, now time.Time) rotation {
	t := e.Token
	period := t.ExpiresAt.Sub(t.LastRefreshAt) - renewalMargin(e, refreshMargin)
	return rotation{
		ttl:    int64(max(servedUntil(name, e, refreshMargin).Sub(now), minRotationTTL) / time.Second),
		period: int64(max(period, minRotationTTL) / time.Second),
	}
}
