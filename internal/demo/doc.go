// Package demo is `picoseg demo`: it builds the network-namespace lab, runs
// the real daemon in the lab's gateway with rules/demo.toml, plays a short
// scenario with real traffic, and prints what was expected beside what
// happened, with the daemon's own counters. The lab is torn down at the end,
// on failure and on Ctrl-C.
package demo
