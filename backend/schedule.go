package backend

import (
	"container/heap"
	"hash/fnv"
	"time"
)

// schedule is when each company next needs the periodic renewal, earliest
// first, so that a pass with nothing due looks at one entry however many
// companies the mount has. It is kept current by every change of a
// company's state; its owner (registry) locks it.
type schedule struct {
	items dueHeap
	index map[string]*dueItem
}

type dueItem struct {
	name string
	due  time.Time
	pos  int
}

// set schedules name at due; a zero due takes it off the schedule.
func (q *schedule) set(name string, due time.Time) {
	if q.index == nil {
		q.index = map[string]*dueItem{}
	}
	it, ok := q.index[name]
	switch {
	case due.IsZero() && ok:
		heap.Remove(&q.items, it.pos)
		delete(q.index, name)
	case due.IsZero():
	case ok:
		it.due = due
		heap.Fix(&q.items, it.pos)
	default:
		it = &dueItem{name: name, due: due}
		heap.Push(&q.items, it)
		q.index[name] = it
	}
}

// popDue takes up to limit companies due at now off the schedule, earliest
// first. Each is scheduled again once its renewal has run.
func (q *schedule) popDue(now time.Time, limit int) []string {
	var names []string
	for len(q.items) > 0 && len(names) < limit && !q.items[0].due.After(now) {
		it := heap.Pop(&q.items).(*dueItem)
		delete(q.index, it.name)
		names = append(names, it.name)
	}
	return names
}

// dueHeap implements heap.Interface over due times.
type dueHeap []*dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *dueHeap) Push(x any) {
	it := x.(*dueItem)
	it.pos = len(*h)
	*h = append(*h, it)
}
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}

// Keep-alive: a company nobody reads still gets a grant about once a month,
// far inside Concur's six-month idle limit for refresh tokens. The interval
// is shortened by up to keepAliveJitter, by a hash of the company's name,
// so that companies connected together do not all renew in the same minute.
const (
	keepAliveEvery  = 30 * 24 * time.Hour
	keepAliveJitter = 7 * 24 * time.Hour
)

func keepAliveInterval(name string) time.Duration {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return keepAliveEvery - time.Duration(h.Sum32()%uint32(keepAliveJitter/time.Minute))*time.Minute
}

// renewalKind is why a company's tokens are next renewed by the engine.
type renewalKind int

const (
	renewNone          renewalKind = iota // nothing until an operator writes the company
	renewAccess                           // a kept-ready access token (prewarm) nears the refresh margin
	renewKeepAlive                        // no grant for the keep-alive interval
	renewRefreshExpiry                    // the refresh token nears its expiry
)

// nextRenewal is the one rule for when the engine renews a company's
// tokens on its own, and why: a kept-ready access token margin before its
// expiry, a keep-alive, or a refresh token near its expiry (at most once
// per refreshForItsSakeEvery), never before the backoff after a failure
// ends. The schedule, the periodic pass, the keep-alive's recheck and the
// ttl creds answers (servedUntil) all derive from it.
func nextRenewal(name string, e *companyEntry, margin time.Duration) (time.Time, renewalKind) {
	if e == nil || waitsForOperator(e) {
		return time.Time{}, renewNone
	}
	t := e.Token
	at, kind := t.LastRefreshAt.Add(keepAliveInterval(name)), renewKeepAlive
	if !t.RefreshExpiresAt.IsZero() {
		if exp := latestOf(t.RefreshExpiresAt.Add(-refreshTokenMargin), t.RefreshRenewedAt.Add(refreshForItsSakeEvery)); exp.Before(at) {
			at, kind = exp, renewRefreshExpiry
		}
	}
	if e.Prewarm {
		if access := t.ExpiresAt.Add(-margin); access.Before(at) {
			at, kind = access, renewAccess
		}
	}
	return latestOf(at, t.NextAttemptAt), kind
}

// servedUntil is when the engine will serve a different token than e's
// current one: its next renewal (nextRenewal), or else the first read that
// finds less than minServeTTL left, never before the backoff ends and never
// after the token expires.
func servedUntil(name string, e *companyEntry, margin time.Duration) time.Time {
	at, _ := nextRenewal(name, e, margin)
	read := latestOf(e.Token.ExpiresAt.Add(-minServeTTL), e.Token.NextAttemptAt)
	if at.IsZero() || read.Before(at) {
		at = read
	}
	return earliest(at, e.Token.ExpiresAt)
}

// renewalMargin is how much life is left when a company's access token is
// replaced: the refresh margin for a kept-ready token, else what a read
// needs.
func renewalMargin(e *companyEntry, margin time.Duration) time.Duration {
	if e.Prewarm {
		return max(margin, minServeTTL)
	}
	return minServeTTL
}

// due is when the periodic pass next has something to do for the company
// (zero: nothing until an operator writes it): unsaved tokens at once,
// otherwise its next renewal.
func (v companyView) due(name string, margin time.Duration, now time.Time) time.Time {
	switch {
	case v.unsaved:
		return now
	case v.entry == nil:
		return time.Time{}
	}
	at, _ := nextRenewal(name, v.entry, margin)
	return at
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func latestOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
