package alert

// lru is a map with a fixed number of keys that evicts the least recently
// touched one when full. The limiter and the scan detector key their state
// by device or source address, and source addresses are chosen by whoever
// sends the packets: without a cap, a spoofing host could grow this state
// without bound.
type lru[K comparable, V any] struct {
	max   int
	nodes map[K]*lruNode[K, V]
	// head is the least recently touched node, tail the most recent.
	head, tail *lruNode[K, V]
}

type lruNode[K comparable, V any] struct {
	key        K
	val        V
	prev, next *lruNode[K, V]
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, nodes: make(map[K]*lruNode[K, V])}
}

func (l *lru[K, V]) len() int { return len(l.nodes) }

// get returns the value for k, marking it the most recently touched, or nil.
func (l *lru[K, V]) get(k K) *V {
	n := l.nodes[k]
	if n == nil {
		return nil
	}
	l.unlink(n)
	l.pushBack(n)
	return &n.val
}

// add inserts k with value v, which must not be present. When the map is
// full it first evicts the least recently touched key and returns it.
func (l *lru[K, V]) add(k K, v V) (val *V, evicted *lruNode[K, V]) {
	if len(l.nodes) >= l.max && l.head != nil {
		evicted = l.head
		l.unlink(evicted)
		delete(l.nodes, evicted.key)
	}
	n := &lruNode[K, V]{key: k, val: v}
	l.nodes[k] = n
	l.pushBack(n)
	return &n.val, evicted
}

func (l *lru[K, V]) remove(n *lruNode[K, V]) {
	l.unlink(n)
	delete(l.nodes, n.key)
}

// each calls f for every node from the least to the most recently touched.
// f may remove the node it is given.
func (l *lru[K, V]) each(f func(*lruNode[K, V])) {
	for n := l.head; n != nil; {
		next := n.next
		f(n)
		n = next
	}
}

func (l *lru[K, V]) unlink(n *lruNode[K, V]) {
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

func (l *lru[K, V]) pushBack(n *lruNode[K, V]) {
	n.prev = l.tail
	if l.tail != nil {
		l.tail.next = n
	} else {
		l.head = n
	}
	l.tail = n
}
