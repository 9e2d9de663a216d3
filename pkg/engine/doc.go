// Package engine judges packets: it runs the ordered stages (identify the
// device, then segment, micro and pico) over a compiled policy and keeps a
// flow cache so that only a flow's first packets are judged in full.
//
// A cached verdict belongs to the side that opened the flow. A packet that
// opens a connection on a known tuple (a SYN from the responder, any SYN on
// a flow picked up mid-stream or closing) is judged as a new flow of its
// sender; ICMP queries are flows of their requester, per identifier and
// kind; ICMP errors are judged by the flow they quote and never open one.
//
// Each policy generation owns bounded state that the packet path updates
// without allocating: byte budgets, new-flow rates and fan-out tables per
// device (budget.go, fanout.go; sources the policy does not know are
// counted by IPv4 address or IPv6 /64, idle budgets are reclaimed, and a
// full table sends new sources to a shared overflow budget), and the
// binding of each device known only by its address to the bridge port and
// MAC it was first seen on (binding.go). A reload carries both over for
// what keeps its name.
//
// The engine holds no kernel code. The daemon feeds it packets from NFQUEUE
// (one Worker per queue); `picoseg replay` feeds it packets from captures
// with their timestamps as the clock. Flows described by their tuple rather
// than a packet are asked about with Judge: the daemon's flows that the
// kernel fast-paths, judged again after a reload, as windows close and for
// byte budgets, without allocating per flow. Explain and ExplainQuery are
// the same judgement with every stage's answer (a Trace: data only; the
// explain command renders it). All of them get the same verdicts from the
// same code.
//
// How a packet is judged (as its flow's opener or as a reply, as a new or an
// existing flow, for real or dry) is a judging value, which the stages read
// as fields of their Context; no function takes a list of booleans.
package engine
