// Package lru is a small, mutex-guarded least-recently-used cache.
//
// Transports hold connection pools and bearer tokens; keeping a bounded set
// of them lets repeated calls reuse both, while thousands of distinct
// registries or logins cannot grow memory without limit.
package lru

import (
	"container/list"
	"sync"
)

// Cache maps keys to values, dropping the least recently used past its size.
type Cache[K comparable, V any] struct {
	mu      sync.Mutex
	size    int
	order   *list.List
	items   map[K]*list.Element
	onEvict func(V)
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns a cache holding at most size entries; onEvict (may be nil)
// runs on each dropped value, outside the lock.
func New[K comparable, V any](size int, onEvict func(V)) *Cache[K, V] {
	return &Cache[K, V]{size: size, order: list.New(), items: map[K]*list.Element{}, onEvict: onEvict}
}

// Get returns the value for key and marks it recently used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*entry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Add stores val under key unless another caller stored one first; it
// returns the value that is now cached, so concurrent builders converge.
func (c *Cache[K, V]) Add(key K, val V) V {
	c.mu.Lock()
	if el, ok := c.items[key]; ok {
		c.order.MoveToFront(el)
		c.mu.Unlock()
		return el.Value.(*entry[K, V]).val
	}
	c.items[key] = c.order.PushFront(&entry[K, V]{key, val})
	var evicted []V
	for c.order.Len() > c.size {
		el := c.order.Back()
		e := el.Value.(*entry[K, V])
		c.order.Remove(el)
		delete(c.items, e.key)
		evicted = append(evicted, e.val)
	}
	c.mu.Unlock()
	if c.onEvict != nil {
		for _, v := range evicted {
			c.onEvict(v)
		}
	}
	return val
}

// Len reports the number of cached entries.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
