// Package backend is the Vault secrets engine: its paths, the renewal of
// Concur tokens, and the state that keeps them.
//
// # A creds read, in ten lines
//
//  1. pathCredsRead (path_creds.go) checks min_ttl; companyToRead finds the company:
//  2. backend.lookup: appCache.load, then registry.lookup (the company in memory, or a probe of storage kept only if it exists).
//  3. company.usable (serve.go) takes a consistent view (company.mu, read) and serves it if the token has what the read needs.
//  4. Otherwise, on the node that may write and outside backoff, company.renew (renew.go) asks for a grant:
//  5. company.run (company.go): one flight per want, registry.hold, grantLock, a grantGate slot, a job context that ends at Clean.
//  6. renewLocked: latest (unsaved tokens first, else storage again); still wanted? gate paused? a foreign marker live (grant_marker.go)?
//  7. refreshGrant: markGrant stores the write-ahead marker, grantGate.do runs the grant, grantGate.noteResult hears 429s and refusals.
//  8. saveIssued stores the new tokens before anything serves them (unsaved in memory if storage refuses), and publish makes them current:
//  9. publish tells the registry the company's next due time, from the one renewal rule (nextRenewal in schedule.go).
//  10. usable serves the new view; rotationOf answers ttl from servedUntil, which derives from nextRenewal too.
//
// # Who owns what
//
//	type         file            lock                 guards
//	appCache     app_cache.go    appCache.mu          the app's settings and client, the unsaved copy, v0.1.0's legacy entry
//	grantGate    grant_gate.go   grantGate.mu         429 slow-down, refused app credentials, closed (Clean began)
//	                             grantGate.slots      at most maxConcurrentGrants token calls in flight
//	                             grantGate.live       the cut at Clean: held (read) by each Concur token call and company write
//	registry     registry.go     registry.mu          the companies in memory (members, holds), listed/unlisted, the schedule
//	                             registry.listMu      one loadAll at a time
//	company      company.go      company.mu           its cached entry, unsaved/unreadable, marker sighting, last rejected renewal
//	                             company.grantLock    one token call (and its write) at a time for the company
//	                             company.flights      readers and passes that want the same grant share it
//	metrics      metrics.go      (Prometheus's own)   the mount's series
//
// The periodic pass (periodic.go) pops due companies off the registry's
// schedule and calls company.renewIfDue; Clean (backend.clean) shuts the
// gate, waits for grants in flight, writes unsaved tokens, then cuts the
// gate off. A company reaches the mount only through companyDeps.
//
// # Lock order
//
// Where one is taken under another, it is in this order, never the reverse:
//
//	registry.listMu → company.grantLock → grantGate.slots → grantGate.live (read)
//	  → company.mu → appCache.mu → registry.mu → grantGate.mu
//
// company.mu → registry.mu is the one nesting on the hot path: a company
// tells the registry its due time under its own lock, so the schedule
// follows its newest state. The registry never calls a company while
// holding registry.mu, and appCache tells others of a change (appChanged)
// only after releasing appCache.mu.
package backend
