package backend

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/concur-vault/vault-plugin-secrets-concur/concur"
)

// deprecationWindow: a notice is logged at most once per API per window,
// and shown on responses while one was seen within it.
const deprecationWindow = 24 * time.Hour

// deprecations keeps the deprecation notices Concur sent this mount (issue
// 11.6), one per API (the client's Op: "refresh grant", "get user", ...).
// Ops are a fixed set, so the map stays small.
type deprecations struct {
	now func() time.Time
	log func() hclog.Logger

	mu   sync.Mutex
	byOp map[string]*deprecationSeen
}

type deprecationSeen struct {
	notice concur.DeprecationNotice
	api    string // concurEndpoint of the notice's path: token, identity, connections, other
	seen   time.Time
	logged time.Time
}

func newDeprecations(now func() time.Time, log func() hclog.Logger) *deprecations {
	return &deprecations{now: now, log: log, byOp: map[string]*deprecationSeen{}}
}

// note is concur.Options.OnDeprecation: it records n and logs it unless
// this API's notice was logged within the window.
func (d *deprecations) note(n concur.DeprecationNotice) {
	now := d.now()
	d.mu.Lock()
	s := d.byOp[n.Op]
	if s == nil {
		s = &deprecationSeen{}
		d.byOp[n.Op] = s
	}
	s.notice, s.api, s.seen = n, concurEndpoint(n.Path), now
	logIt := s.logged.IsZero() || now.Sub(s.logged) >= deprecationWindow
	if logIt {
		s.logged = now
	}
	d.mu.Unlock()
	if logIt {
		d.log().Warn("Concur marks an API the engine uses as deprecated",
			"op", n.Op, "path", n.Path, "warning", n.Warning, "sunset", n.Sunset)
	}
}

// warnings are the notices seen within the window for the given APIs (all
// APIs when none are given), as response warnings, sorted by Op. They name
// the Op, never the path: paths carry user ids, and other callers see these.
func (d *deprecations) warnings(apis ...string) []string {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for op, s := range d.byOp {
		if now.Sub(s.seen) >= deprecationWindow {
			delete(d.byOp, op)
			continue
		}
		if len(apis) == 0 || slices.Contains(apis, s.api) {
			out = append(out, deprecationText(s.notice))
		}
	}
	sort.Strings(out)
	return out
}

func deprecationText(n concur.DeprecationNotice) string {
	w := "Concur marks the API behind this engine's " + n.Op + " calls as deprecated"
	if n.Warning != "" {
		w += ": " + n.Warning
	}
	if n.Sunset != "" {
		w += " (sunset " + n.Sunset + ")"
	}
	return w
}

// warnDeprecated wraps the handlers of paths so that their successful
// answers carry the active deprecation notices of api (as concurEndpoint
// names it), the Concur API that serves those paths.
func (b *backend) warnDeprecated(api string, paths ...*framework.Path) []*framework.Path {
	return wrapOperations(paths, func(inner framework.OperationFunc) framework.OperationFunc {
		return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
			resp, err := inner(ctx, req, d)
			if err == nil && resp != nil && !resp.IsError() {
				for _, w := range b.deprecations.warnings(api) {
					resp.AddWarning(w)
				}
			}
			return resp, err
		}
	})
}

// The Concur APIs behind the engine's paths, as concurEndpoint names them:
// creds and rotate are served by the token endpoint, profile by Identity.
const (
	tokenAPI    = "token"
	identityAPI = "identity"
)
