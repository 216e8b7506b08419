package backend

import (
	"container/heap"
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

// len is how many companies are scheduled.
func (q *schedule) len() int { return len(q.items) }

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
