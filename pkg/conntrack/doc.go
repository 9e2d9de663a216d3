// Package conntrack controls the kernel's connection tracking table for
// picoseg: it lists flows, changes the picoseg bits of their conntrack mark
// and deletes them.
//
// Policy changes, closing time windows and expired authentications must
// reach flows the kernel already fast-paths. Re-marking a flow (to 0, so its
// next packet is queued and judged again) or deleting it does that.
// ClearMarks wipes stale picoseg marks at start-up, so a restarted daemon
// judges every flow afresh.
//
// Mark changes use CTA_MARK with CTA_MARK_MASK, so the kernel changes only
// the masked bits in one step and the bits of other programs (mwan3, pbr,
// SQM) are never rewritten from a stale copy.
//
// With flow accounting on (EnableAccounting, per network namespace, before
// the flows of interest start), every dumped Flow carries its packet and
// byte counters in both directions. A Tracker turns successive dumps into
// what each flow moved between them: package inventory counts that per
// device, and the daemon holds fast-pathed flows to their device budgets
// with it.
//
// Dumps are read and parsed a buffer at a time (Each), keeping only the
// few fields picoseg uses: a gateway with 100 000 tracked flows must not hold
// the kernel's whole table in memory to look at it.
//
// The Controller interface lets other packages test against Fake without a
// kernel. Linux-only code sits in _linux.go files.
package conntrack
