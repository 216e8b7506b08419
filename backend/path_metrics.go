package backend

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/prometheus/common/expfmt"
)

const pathMetricsHelpSynopsis = "The engine's metrics, in Prometheus text format."

const pathMetricsHelpDescription = `
Answers with this mount's metrics in the Prometheus text exposition format:
grants by outcome and Concur error code, renewal latency, seconds until the
access and refresh tokens expire, status, creds and profile requests with
latency histograms, Concur calls by endpoint, and the plugin process.

Each Vault node runs its own plugin process, so each node reports its own
figures: scrape every node. format=prometheus (the default, and the only
format) is accepted because scrape configs for Vault send it.

Grant read on this path to the scraper's token only; it carries no secret.
`

func pathMetrics(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "metrics",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "concur",
		},
		Fields: map[string]*framework.FieldSchema{
			"format": {
				Type:        framework.TypeString,
				Query:       true,
				Description: `Exposition format: "prometheus" (the default and only one).`,
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathMetricsRead,
				Summary:  "Read the engine's metrics (Prometheus text format).",
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "read",
					OperationSuffix: "metrics",
				},
			},
		},
		HelpSynopsis:    pathMetricsHelpSynopsis,
		HelpDescription: strings.TrimSpace(pathMetricsHelpDescription),
	}
}

func (b *backend) pathMetricsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	if f := d.Get("format").(string); f != "" && f != "prometheus" {
		return fieldError("format", "must be prometheus, got %.32q", f), nil
	}
	views, err := b.companyViews(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	b.metrics.observeState(views, b.now())
	families, err := b.metrics.registry.Gather()
	if err != nil {
		return nil, err
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	var body bytes.Buffer
	enc := expfmt.NewEncoder(&body, format)
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			return nil, err
		}
	}
	return &logical.Response{Data: map[string]any{
		logical.HTTPStatusCode:  http.StatusOK,
		logical.HTTPContentType: string(format),
		logical.HTTPRawBody:     body.Bytes(),
	}}, nil
}

// timed wraps the handlers of paths so that each answer is counted and
// timed under name (creds, profile), leaving the paths themselves alone.
func (b *backend) timed(name string, paths ...*framework.Path) []*framework.Path {
	return wrapOperations(paths, func(inner framework.OperationFunc) framework.OperationFunc {
		return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
			start := time.Now()
			resp, err := inner(ctx, req, d)
			b.metrics.request(b.companyLabel(d), name, time.Since(start), resp, err)
			return resp, err
		}
	})
}

// wrapOperations replaces the callback of every operation of paths by
// wrap(callback), leaving the paths themselves alone.
func wrapOperations(paths []*framework.Path, wrap func(framework.OperationFunc) framework.OperationFunc) []*framework.Path {
	for _, p := range paths {
		for op, h := range p.Operations {
			po, ok := h.(*framework.PathOperation)
			if !ok || po.Callback == nil {
				continue
			}
			wrapped := *po
			wrapped.Callback = wrap(po.Callback)
			p.Operations[op] = &wrapped
		}
	}
	return paths
}

// companyLabel names the company a request is about, for metrics: only a
// company that exists gets its name, so a reader cannot mint label values.
func (b *backend) companyLabel(d *framework.FieldData) string {
	name, ok := pathName(d)
	if !ok {
		return defaultCompanyName
	}
	if validCompanyName(name) && b.companies.exists(name) {
		return name
	}
	return "unknown"
}
