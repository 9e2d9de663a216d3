package lru

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMapAgainstSlice drives a Map and an obvious slice model (least
// recently touched first) with the same random operations.
func TestMapAgainstSlice(t *testing.T) {
	const max = 5
	rng := rand.New(rand.NewPCG(1, 2))
	m := NewMap[int, int](max)
	var model []Entry[int, int]
	find := func(k int) int {
		return slices.IndexFunc(model, func(e Entry[int, int]) bool { return e.Key == k })
	}
	for step := range 5000 {
		k := rng.IntN(12)
		switch op := rng.IntN(3); {
		case op == 0:
			i := find(k)
			got := m.Get(k)
			if (got != nil) != (i >= 0) {
				t.Fatalf("step %d: Get(%d) = %v, model has it at %d", step, k, got, i)
			}
			if i >= 0 {
				if *got != model[i].Value {
					t.Fatalf("step %d: Get(%d) = %d, want %d", step, k, *got, model[i].Value)
				}
				e := model[i]
				model = append(slices.Delete(model, i, i+1), e)
			}
		case op == 1 && find(k) < 0:
			_, ev := m.Add(k, step)
			var want *Entry[int, int]
			if len(model) >= max {
				want = &model[0]
				model = model[1:]
			}
			if (ev == nil) != (want == nil) || (ev != nil && *ev != *want) {
				t.Fatalf("step %d: Add(%d) evicted %v, want %v", step, k, ev, want)
			}
			model = append(model, Entry[int, int]{k, step})
		case op == 2:
			m.Delete(k)
			if i := find(k); i >= 0 {
				model = slices.Delete(model, i, i+1)
			}
		}
		var order []Entry[int, int]
		m.Each(func(e *Entry[int, int]) { order = append(order, *e) })
		if !slices.Equal(order, model) || m.Len() != len(model) {
			t.Fatalf("step %d: order %v, model %v", step, order, model)
		}
	}
}

func TestEachMayDeleteTheEntryItIsGiven(t *testing.T) {
	m := NewMap[int, int](10)
	for k := range 6 {
		m.Add(k, k)
	}
	m.Each(func(e *Entry[int, int]) {
		if e.Key%2 == 0 {
			m.Delete(e.Key)
		}
	})
	var keys []int
	m.Each(func(e *Entry[int, int]) { keys = append(keys, e.Key) })
	if !slices.Equal(keys, []int{1, 3, 5}) {
		t.Fatalf("keys %v, want [1 3 5]", keys)
	}
}
