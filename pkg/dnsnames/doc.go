// Package dnsnames keeps, per device, the addresses DNS answers gave it and
// for which names, so that a rule can name its destination by DNS name
// ("dns:*.tplinkcloud.com").
//
// What is recorded is what a device was told in answer to a query it sent:
// the table also keeps the queries it saw (client, resolver, ports,
// identifier and name) and accepts an answer only when it answers one of
// them, once. A device's view is its own: one device's answers never open
// anything for another, and an answer to nobody's query opens nothing.
//
// Names are kept as 64-bit keyed hashes (the name and its parent domains),
// not as text: the table's memory is bounded by its sizes alone, and
// without the process's random key nobody can choose two names that
// collide. Everything is bounded: devices, addresses per device, names per
// address and outstanding queries, with the eviction rules written beside
// each bound. The table belongs to the engine, not to a policy: it
// survives reloads.
package dnsnames
