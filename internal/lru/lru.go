// Package lru keeps things in the order they were last touched, so that a
// bounded set can forget the least recently touched one in O(1).
//
// State keyed by what others choose (a source address, a MAC) must be
// bounded, or a host that spoofs them grows it without end: the alert
// limiter, the scan detector and the device inventory all evict this way.
// List is the order alone, for a caller that indexes its values itself (the
// inventory finds a device by MAC and by every address); Map is a map with
// a fixed number of keys built on it.
package lru

// List orders values from the least to the most recently touched. The zero
// List is empty and ready to use. It is not safe for concurrent use.
type List[V any] struct {
	// head is the least recently touched node, tail the most recent.
	head, tail *Node[V]
	n          int
}

// Node holds one value of a List.
type Node[V any] struct {
	Value      V
	prev, next *Node[V]
}

// Next returns the node touched after n, or nil.
func (n *Node[V]) Next() *Node[V] { return n.next }

// Len returns the number of values in the list.
func (l *List[V]) Len() int { return l.n }

// Oldest returns the least recently touched node, or nil.
func (l *List[V]) Oldest() *Node[V] { return l.head }

// Push adds v as the most recently touched value and returns its node.
func (l *List[V]) Push(v V) *Node[V] {
	n := &Node[V]{Value: v}
	l.pushBack(n)
	l.n++
	return n
}

// Touch marks n, which must be in l, as the most recently touched.
func (l *List[V]) Touch(n *Node[V]) {
	if l.tail == n {
		return
	}
	l.unlink(n)
	l.pushBack(n)
}

// Remove takes n, which must be in l, out of the list.
func (l *List[V]) Remove(n *Node[V]) {
	l.unlink(n)
	l.n--
}

func (l *List[V]) unlink(n *Node[V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = nil, nil
}

func (l *List[V]) pushBack(n *Node[V]) {
	n.prev = l.tail
	if l.tail != nil {
		l.tail.next = n
	} else {
		l.head = n
	}
	l.tail = n
}

// Map is a map with a fixed number of keys that evicts the least recently
// touched one when full. It is not safe for concurrent use.
type Map[K comparable, V any] struct {
	max   int
	nodes map[K]*Node[Entry[K, V]]
	order List[Entry[K, V]]
}

// Entry is one key of a Map and its value.
type Entry[K comparable, V any] struct {
	Key   K
	Value V
}

// NewMap returns an empty Map that holds at most max keys.
func NewMap[K comparable, V any](max int) *Map[K, V] {
	return &Map[K, V]{max: max, nodes: make(map[K]*Node[Entry[K, V]])}
}

// Len returns the number of keys in the map.
func (m *Map[K, V]) Len() int { return len(m.nodes) }

// Get returns the value for k, marking it the most recently touched, or
// nil when k is not in the map.
func (m *Map[K, V]) Get(k K) *V {
	n := m.nodes[k]
	if n == nil {
		return nil
	}
	m.order.Touch(n)
	return &n.Value.Value
}

// Add inserts k with value v; k must not be in the map. When the map is
// full it first evicts the least recently touched key and returns it.
func (m *Map[K, V]) Add(k K, v V) (val *V, evicted *Entry[K, V]) {
	if len(m.nodes) >= m.max {
		if old := m.order.Oldest(); old != nil {
			m.order.Remove(old)
			delete(m.nodes, old.Value.Key)
			evicted = &old.Value
		}
	}
	n := m.order.Push(Entry[K, V]{Key: k, Value: v})
	m.nodes[k] = n
	return &n.Value.Value, evicted
}

// Delete removes k from the map.
func (m *Map[K, V]) Delete(k K) {
	if n := m.nodes[k]; n != nil {
		m.order.Remove(n)
		delete(m.nodes, k)
	}
}

// Each calls f for every entry from the least to the most recently
// touched. f may Delete the key it is given.
func (m *Map[K, V]) Each(f func(e *Entry[K, V])) {
	for n := m.order.Oldest(); n != nil; {
		next := n.next
		f(&n.Value)
		n = next
	}
}
