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
grants by outcome and Concur error code, renewal latency, companies by
status, the soonest access- and refresh-token expiry and refresh tokens by
time left, the renewal backlog, creds and profile requests with latency
histograms, Concur calls by endpoint, and the plugin process. Companies are
named only while they need an operator (at most 100), or all of them with
config's metrics_detail=full: docs/metrics.md.

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
	detail := metricsDetailAttention
	if app := b.app.current(); app.entry != nil && app.entry.MetricsDetail != "" {
		detail = app.entry.MetricsDetail
	}
	families, err := b.metrics.gather(views, detail, b.now())
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
			b.metrics.request(name, time.Since(start), resp, err)
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
