// Package metrics exposes picoseg's counters to Prometheus in the text
// exposition format (version 0.0.4), without the client library: on a
// router every hundred kilobytes of binary count.
//
// A Registry holds metric families. Counters and gauges are read at scrape
// time from callbacks, so the atomics the daemon already keeps (engine
// Stats, queue and alert counters) stay the single source of truth and
// nothing is copied on the packet path. Family serves series whose label
// sets change, such as one series per inventory device. Histogram is the
// one type that keeps its own state: fixed buckets of atomic counters, so
// Observe, used for verdict latency on the packet path, takes no lock and
// allocates nothing.
//
// WriteTo writes the page: families sorted by name, each with its HELP and
// TYPE lines, label values escaped (backslash, double quote, newline) and
// made valid UTF-8, histograms as cumulative _bucket series ending in
// le="+Inf", then _sum and _count. Handler serves it with the Content-Type
// Prometheus expects, and Serve runs an HTTP server for it until its
// context ends.
//
// Registering a malformed name, a label set twice or one name with two
// types panics: those are programming errors, found by the first test that
// builds the registry, like a duplicate pattern given to http.ServeMux.
//
// Everything that ends up in a label value (device names, DHCP hostnames)
// may come from the network; the escaping is what keeps a hostile name
// from forging series.
package metrics
