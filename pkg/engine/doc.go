// Package engine judges packets: it runs the ordered stages (identify the
// device, then segment, micro and pico) over a compiled policy and keeps a
// flow cache so that only a flow's first packets are judged in full.
//
// The engine holds no kernel code. The daemon feeds it packets from NFQUEUE;
// `picoseg replay` feeds it packets from captures with their timestamps as
// the clock; `picoseg explain` asks it about one hypothetical flow. All three
// get the same verdicts from the same code.
package engine
