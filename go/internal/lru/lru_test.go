package lru

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
)

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	var evicted []string
	c := New[string, string](3, func(v string) { evicted = append(evicted, v) })
	c.Add("a", "A")
	c.Add("b", "B")
	c.Add("c", "C")
	if c.Len() != 3 || len(evicted) != 0 {
		t.Fatalf("Len=%d evicted=%q before the cache was full", c.Len(), evicted)
	}
	// Touch "a": "b" is now the least recently used.
	if v, ok := c.Get("a"); !ok || v != "A" {
		t.Fatalf("Get(a) = %q, %v", v, ok)
	}
	c.Add("d", "D")
	if !reflect.DeepEqual(evicted, []string{"B"}) {
		t.Fatalf("evicted %q, want [B]", evicted)
	}
	if _, ok := c.Get("b"); ok {
		t.Error("b still cached after eviction")
	}
	c.Add("e", "E") // "c" is next: a was touched, d and e are new
	c.Add("f", "F") // then "a"
	if !reflect.DeepEqual(evicted, []string{"B", "C", "A"}) {
		t.Fatalf("evicted %q, want [B C A]", evicted)
	}
	for _, k := range []string{"d", "e", "f"} {
		if _, ok := c.Get(k); !ok {
			t.Errorf("%s missing", k)
		}
	}
	if c.Len() != 3 {
		t.Errorf("Len = %d, want 3", c.Len())
	}
}

func TestAddKeepsExistingValue(t *testing.T) {
	var evicted []int
	c := New[string, int](2, func(v int) { evicted = append(evicted, v) })
	if got := c.Add("k", 1); got != 1 {
		t.Fatalf("Add returned %d", got)
	}
	c.Add("other", 2)
	// A concurrent builder lost the race: it gets the cached value back,
	// and "k" becomes the most recently used.
	if got := c.Add("k", 99); got != 1 {
		t.Fatalf("second Add returned %d, want the cached 1", got)
	}
	c.Add("new", 3)
	if !reflect.DeepEqual(evicted, []int{2}) {
		t.Fatalf("evicted %v, want [2]: a losing Add must still refresh the key", evicted)
	}
	if v, _ := c.Get("k"); v != 1 {
		t.Fatalf("Get(k) = %d after a losing Add", v)
	}
	if c.Len() != 2 {
		t.Errorf("Len = %d", c.Len())
	}
}

func TestNilOnEvict(t *testing.T) {
	c := New[int, int](1, nil)
	c.Add(1, 1)
	c.Add(2, 2)
	if _, ok := c.Get(1); ok || c.Len() != 1 {
		t.Fatalf("Len=%d, 1 cached=%v", c.Len(), ok)
	}
}

func TestGetMissing(t *testing.T) {
	c := New[string, *int](2, nil)
	if v, ok := c.Get("nope"); ok || v != nil {
		t.Fatalf("Get(missing) = %v, %v", v, ok)
	}
}

func TestOnEvictRunsOutsideLock(t *testing.T) {
	var c *Cache[int, int]
	done := make(chan struct{})
	c = New[int, int](1, func(int) {
		// Would deadlock if the cache's mutex were held here.
		c.Len()
		close(done)
	})
	c.Add(1, 1)
	c.Add(2, 2)
	<-done
}

func TestConcurrentUse(t *testing.T) {
	var mu sync.Mutex
	evictions := 0
	c := New[string, int](8, func(int) { mu.Lock(); evictions++; mu.Unlock() })
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				k := fmt.Sprint((g*7 + i) % 20)
				c.Add(k, i)
				c.Get(k)
			}
		}(g)
	}
	wg.Wait()
	if c.Len() != 8 {
		t.Errorf("Len = %d, want 8", c.Len())
	}
	mu.Lock()
	defer mu.Unlock()
	if evictions == 0 {
		t.Error("no evictions with 20 keys in an 8-entry cache")
	}
}
