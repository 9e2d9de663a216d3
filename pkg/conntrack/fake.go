package conntrack

import (
	"context"
	"slices"
	"sync"
)

// Fake is an in-memory Controller for tests of code that re-marks or
// deletes flows. The zero value is an empty table; it is safe for
// concurrent use.
type Fake struct {
	mu    sync.Mutex
	flows []Flow
}

// Add tracks f, replacing a flow with the same tuple.
func (c *Fake) Add(f Flow) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := c.find(f); i >= 0 {
		c.flows[i] = f
		return
	}
	c.flows = append(c.flows, f)
}

func (c *Fake) find(f Flow) int {
	return slices.IndexFunc(c.flows, func(g Flow) bool {
		return g.key() == f.key() && (f.ID == 0 || g.ID == 0 || f.ID == g.ID)
	})
}

// Flows returns a copy of the tracked flows.
func (c *Fake) Flows(ctx context.Context) ([]Flow, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.flows), nil
}

// Each implements Controller.
func (c *Fake) Each(ctx context.Context, fn func(Flow) error) error {
	flows, err := c.Flows(ctx)
	if err != nil {
		return err
	}
	for _, f := range flows {
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// SetMark changes the masked bits of the flow's mark.
func (c *Fake) SetMark(f Flow, mark, mask uint32) error {
	if err := f.validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.find(f)
	if i < 0 {
		return notFound(f)
	}
	c.flows[i].Mark = c.flows[i].Mark&^mask | mark&mask
	return nil
}

// Delete removes the flow.
func (c *Fake) Delete(f Flow) error {
	if err := f.validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.find(f)
	if i < 0 {
		return notFound(f)
	}
	c.flows = slices.Delete(c.flows, i, i+1)
	return nil
}

// ClearMarks clears the masked bits of every flow's mark.
func (c *Fake) ClearMarks(mask uint32) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for i := range c.flows {
		if c.flows[i].Mark&mask != 0 {
			c.flows[i].Mark &^= mask
			n++
		}
	}
	return n, nil
}
