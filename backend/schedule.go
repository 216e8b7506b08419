package backend

import (
	"container/heap"
	"hash/fnv"
	"time"
)

// schedule is when each company next needs the periodic renewal, earliest
// first, so that a pass with nothing due looks at one entry however many
// companies the mount has. It is kept current by every change of a
// company's state; its owner (tokenStore) locks it.
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

// keepAliveDue: no grant for the company in its keep-alive interval.
func keepAliveDue(name string, e *companyEntry, now time.Time) bool {
	return now.Sub(e.Token.LastRefreshAt) >= keepAliveInterval(name)
}

// refreshTokenDue: the refresh token nears its expiry and no renewal was
// made for its sake in the last refreshForItsSakeEvery (when Concur does
// not move the expiry forward, renewing every minute would not help).
func refreshTokenDue(e *companyEntry, now time.Time) bool {
	exp := e.Token.RefreshExpiresAt
	return !exp.IsZero() && exp.Sub(now) < refreshTokenMargin && now.Sub(e.Token.RefreshRenewedAt) >= refreshForItsSakeEvery
}

// dueAt is when the periodic renewal next has something to do for the
// company (zero: nothing until an operator writes it): a kept-ready access
// token nearing its margin, a keep-alive or a refresh token near its expiry,
// never before the backoff after a failure ends.
func (v companyView) dueAt(name string, margin time.Duration, now time.Time) time.Time {
	e := v.entry
	switch {
	case e == nil:
		return time.Time{}
	case v.unsaved:
		return now
	case waitsForOperator(e):
		return time.Time{}
	}
	t := e.Token
	due := t.LastRefreshAt.Add(keepAliveInterval(name))
	if !t.RefreshExpiresAt.IsZero() {
		due = earliest(due, latestOf(t.RefreshExpiresAt.Add(-refreshTokenMargin), t.RefreshRenewedAt.Add(refreshForItsSakeEvery)))
	}
	if e.Prewarm {
		due = earliest(due, t.ExpiresAt.Add(-margin))
	}
	return latestOf(due, t.NextAttemptAt)
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
