//! The Go exporter's per-interface network families: `ecs_network_*_total{interface}`, from each
//! container's stats, excluded containers too (an interface is the task's, not a container's).
//! Always written.

use super::{Metric, Subject, count, push_present};
use crate::exposition::Sample;
use crate::model::NetworkStats;

/// Every container in awsvpc mode reports the task's one interface; where containers disagree,
/// the writer keeps the last one, as Go does (the last container in `/task`'s order).
pub(super) fn collect<'a>(c: &Subject<'a>, out: &mut Vec<Sample<'a>>) {
    for (interface, n) in c
        .stats
        .iter()
        .flat_map(|s| s.networks.iter().flat_map(|n| &n.0))
    {
        push_network(n, &INTERFACE_FAMILIES, &[interface], out);
    }
}

/// The eight interface counters, in the order of [`push_network`]'s values.
const INTERFACE_FAMILIES: [Metric; 8] = [
    Metric::NetworkRxBytes,
    Metric::NetworkRxPackets,
    Metric::NetworkRxErrors,
    Metric::NetworkRxDropped,
    Metric::NetworkTxBytes,
    Metric::NetworkTxPackets,
    Metric::NetworkTxErrors,
    Metric::NetworkTxDropped,
];

/// One interface's counters, in the families given (per interface here, per container in
/// `container_network`).
pub(super) fn push_network<'a>(
    n: &NetworkStats,
    families: &[Metric; 8],
    labels: &[&'a str],
    out: &mut Vec<Sample<'a>>,
) {
    let values = [
        n.rx_bytes,
        n.rx_packets,
        n.rx_errors,
        n.rx_dropped,
        n.tx_bytes,
        n.tx_packets,
        n.tx_errors,
        n.tx_dropped,
    ];
    for (&metric, value) in families.iter().zip(values) {
        push_present(out, &[(metric, count(value))], labels);
    }
}
