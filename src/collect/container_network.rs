//! Group `container_network`: the per-interface counters of one container,
//! `ecs_container_network_*_total{container_name,interface}`, for containers in bridge network
//! mode. In bridge mode a container has a network namespace, and so interfaces, of its own; in
//! awsvpc and host mode it shares the task's or the host's, which the per-interface families
//! already describe.

use super::network::push_network;
use super::{Metric, Subject, Switch};
use crate::exposition::Sample;

pub(super) const SWITCH: Switch = Switch {
    name: "container_network",
    default: true,
    help: "Per-container interface counters, for containers in bridge\nnetwork mode.",
};

/// The counters of [`push_network`], per container.
const CONTAINER_INTERFACE_FAMILIES: [Metric; 8] = [
    Metric::ContainerNetworkRxBytes,
    Metric::ContainerNetworkRxPackets,
    Metric::ContainerNetworkRxErrors,
    Metric::ContainerNetworkRxDropped,
    Metric::ContainerNetworkTxBytes,
    Metric::ContainerNetworkTxPackets,
    Metric::ContainerNetworkTxErrors,
    Metric::ContainerNetworkTxDropped,
];

pub(super) fn collect<'a>(c: &Subject<'a>, out: &mut Vec<Sample<'a>>) {
    let Some(s) = c.stats else {
        return;
    };
    let bridge = c.container.networks.iter().flatten().any(|n| {
        let mode = n.network_mode.as_deref().unwrap_or("");
        mode.eq_ignore_ascii_case("bridge")
    });
    if bridge {
        for (interface, n) in s.networks.iter().flat_map(|n| &n.0) {
            push_network(n, &CONTAINER_INTERFACE_FAMILIES, &[c.name, interface], out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::tests::{edge_samples as got, owned};

    /// Only a container in bridge mode has interfaces of its own.
    #[test]
    fn only_bridge_mode_containers_have_their_own_interfaces() {
        assert_eq!(
            got(Metric::ContainerNetworkRxBytes),
            owned(&[("bridged", 11.0)])
        );
    }
}
