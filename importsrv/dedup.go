package importsrv

import (
	"container/list"
	"sync"
	"time"
)

// keyState is what the dedup store knows of an idempotency key.
type keyState uint8

const (
	keyNew  keyState = iota // never seen (or forgotten): process it
	keyBusy                 // another request is processing it
	keyDone                 // merged already: acknowledge, don't merge
)

// dedup remembers recent idempotency keys: those being processed and those
// merged. It is bounded twice: a key is forgotten DedupWindow after it was
// last updated, and the oldest merged keys are forgotten first when there
// are more than DedupMaxKeys. The window must outlast a client's retries of
// one batch; the count bound caps memory at about (key length + 120 bytes)
// per key whatever clients send. Keys being processed are not evicted by
// count, or a retry could merge alongside its original; there are at most
// as many as requests admitted at once.
//
// Entries sit in a list ordered by last update, oldest at the front, next
// to a map for lookup, so every operation and every eviction is O(1).
type dedup struct {
	mu      sync.Mutex
	window  time.Duration
	maxKeys int
	byKey   map[string]*list.Element // of *keyEntry
	order   list.List                // of *keyEntry, oldest first
}

type keyEntry struct {
	key  string
	at   time.Time // when it began or completed
	done bool
}

func newDedup(window time.Duration, maxKeys int) *dedup {
	d := &dedup{window: window, maxKeys: maxKeys, byKey: make(map[string]*list.Element)}
	d.order.Init()
	return d
}

// begin looks key up and, if it is new, records it as being processed.
// The returned token identifies this request's claim for complete and
// abort.
func (d *dedup) begin(key string, now time.Time) (keyState, *list.Element) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(now)
	if el, ok := d.byKey[key]; ok {
		if el.Value.(*keyEntry).done {
			return keyDone, nil
		}
		return keyBusy, nil
	}
	el := d.order.PushBack(&keyEntry{key: key, at: now})
	d.byKey[key] = el
	d.evictOverflow()
	return keyNew, el
}

// complete marks the claimed key as merged, restarting its window. If the
// claim expired meanwhile (a merge slower than the window), the key is
// recorded again unless another request holds it now.
func (d *dedup) complete(el *list.Element, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := el.Value.(*keyEntry)
	e.done, e.at = true, now
	if cur, ok := d.byKey[e.key]; ok && cur == el {
		d.order.MoveToBack(el)
		return
	} else if ok {
		return // someone else's claim; theirs decides
	}
	d.byKey[e.key] = d.order.PushBack(e)
	d.evictOverflow()
}

// evictOverflow forgets the oldest merged keys beyond maxKeys, skipping
// the few being processed.
func (d *dedup) evictOverflow() {
	for el := d.order.Front(); el != nil && d.order.Len() > d.maxKeys; {
		next := el.Next()
		if el.Value.(*keyEntry).done {
			d.remove(el)
		}
		el = next
	}
}

// abort drops the claim of a request that merged nothing, so that a retry
// is processed.
func (d *dedup) abort(el *list.Element) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, ok := d.byKey[el.Value.(*keyEntry).key]; ok && cur == el {
		d.remove(el)
	}
}

// expire forgets keys last updated a window or more ago.
func (d *dedup) expire(now time.Time) {
	for el := d.order.Front(); el != nil; el = d.order.Front() {
		if now.Sub(el.Value.(*keyEntry).at) < d.window {
			return
		}
		d.remove(el)
	}
}

func (d *dedup) remove(el *list.Element) {
	delete(d.byKey, el.Value.(*keyEntry).key)
	d.order.Remove(el)
}

// len returns the number of keys remembered.
func (d *dedup) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.order.Len()
}
