// Package replay runs packet captures through the engine, with the capture's
// timestamps as the clock, and summarises what the policy would have done:
// per device, per layer, and every event.
package replay
