// Package alert tells operators what picoseg does, through the logs they
// already read: OpenWrt's logd (logread), rsyslog or syslog-ng, a central
// SIEM, or a JSON-lines file.
//
// The engine raises an engine.Event for every flow it denies and every
// bound a device trips. A Dispatcher is the engine's engine.Sink: Emit
// copies the event into a bounded queue and returns, so the verdict path
// never waits for logging. One goroutine then
//
//  1. feeds the ScanDetector, which raises possible_scan when one source
//     reaches more than ScanThreshold distinct (destination, port) pairs
//     within ScanWindow;
//  2. turns the event into an Alert of the catalogue below;
//  3. hands it to the Limiter: per (type, device) the first alert passes
//     at once and the rest of the window is folded into one summary alert
//     whose Count says how many events it stands for, under a budget of
//     alerts a second per severity class (crit, err, warning, notice), so
//     a flood of warnings never holds back a crit or an err alert; what a
//     budget or the key table cannot hold is folded into one aggregate per
//     type, never dropped, and alerts_suppressed and alerts_resumed say
//     when a budget started and stopped holding alerts back;
//  4. formats the message (only now: folded alerts cost no formatting);
//  5. sends it to every Sink, each with its own bounded buffer and
//     goroutine, so a receiver that is down loses alerts (counted) but
//     never slows the rest.
//
// A device scanning the network thus produces a flow_denied alert, a
// possible_scan alert and one summary of each per window, not ten thousand
// lines. Daemon-level alerts (start, stop, failed reload, queue overflow,
// new device) come in through Dispatcher.Raise and take the same path.
//
// # Catalogue
//
// Names are stable; severities are syslog severities.
//
//	| type                   | severity | raised when                                                   |
//	|------------------------|----------|---------------------------------------------------------------|
//	| flow_denied            | warning  | a layer (segment, micro, pico, ...) denied a flow; carries it |
//	| spoofed_address        | crit     | a known device used an address not its own, or its address    |
//	|                        |          | was used from another hardware address                        |
//	| new_device             | notice   | a device picoseg had not seen before appeared                 |
//	| device_silent          | warning  | a device moved less than its rule's lower bound in a period   |
//	| volume_exceeded        | warning  | a flow or device went over its byte bound                     |
//	| outside_time_window    | notice   | a flow was refused or cut outside its rule's time window      |
//	| new_flow_rate_exceeded | warning  | a device opened new flows faster than its rule allows         |
//	| possible_scan          | warning  | one device reached many distinct destinations or ports in a   |
//	|                        |          | short time (default: more than 20 within 10 s), or was        |
//	|                        |          | refused a flow by its rule's fan-out bound                    |
//	| queue_overflow         | err      | the packet queue overflowed (fail-open or drop, as configured)|
//	| policy_reload_failed   | err      | a reload was rejected; the running policy stays               |
//	| daemon_started         | info     | the daemon started judging packets                            |
//	| internal_error         | err      | a bug was hit judging a packet: it got the on_daemon_down     |
//	|                        |          | verdict and the daemon went on judging                        |
//	| daemon_stopped         | notice   | the daemon stopped                                            |
//	| undecodable_packet     | notice   | a packet could not be judged on its headers                   |
//	| alerts_suppressed      | err      | a severity's alert budget ran out: its alerts are held back   |
//	|                        |          | and counted in summaries (one alert per episode)              |
//	| alerts_resumed         | notice   | that severity has had nothing held back for 10 s; says how    |
//	|                        |          | many alerts were held back                                    |
//	| arp_spoof              | crit     | ARP or a neighbour discovery message from a bridge port       |
//	|                        |          | claimed an address bound to another device or the gateway, or |
//	|                        |          | named another MAC than its sender's in its link-layer option  |
//	|                        |          | (dropped)                                                     |
//	| arp_flood              | warning  | ARP or neighbour discovery over a bridge port's budget        |
//	| ruleset_restored       | err      | picoseg's nftables table was deleted or changed by another    |
//	|                        |          | program (nft flush ruleset) and installed again               |
//	| rogue_router           | crit     | a router advertisement, redirect or DHCP server message from  |
//	|                        |          | a bridge port not listed in port_routers (dropped)            |
//	| app_mismatch           | warning  | a flow under a rule with app did not speak that protocol      |
//	| app_denied             | warning  | a flow's application carried what its rule forbids (a server  |
//	|                        |          | name, a host, a Modbus write: names the function code)        |
//	| app_unidentified       | notice   | a flow's application was not identified within the budget and |
//	|                        |          | its rule says unidentified = "deny"                           |
//
// # Sinks
//
// A SinkConfig of type "syslog" with an empty Address writes RFC 3164-style
// lines to the local socket /dev/log ("<PRI>Mmm dd hh:mm:ss
// picoseg[pid]: type: message"), which logd, rsyslog and syslog-ng accept.
// With udp://, tcp:// or tls:// it sends RFC 5424 messages, MSGID the alert
// type, with the alert's fields as structured data:
//
//	<28>1 2025-01-02T03:04:05.000000Z gw picoseg 812 flow_denied [picoseg@32473 type="flow_denied" device="camera-1" src="10.0.0.5" dst="10.0.1.1" proto="tcp" port="22" layer="micro" rule="cams" count="1"] camera-1 (10.0.0.5) -> 10.0.1.1 tcp/22: flow denied at the micro layer by rule "cams": ...
//
// TCP and TLS (RFC 5425) use octet-counting framing (RFC 6587); TLS always
// verifies the receiver's name, against CA or the system roots. A SinkConfig
// of type "jsonl" appends one JSON object a line and rotates by size.
package alert
