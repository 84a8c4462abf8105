//! Group `pids`: processes and threads in each container's cgroup, and their limit (EC2;
//! `pids_stats` is `{}` on Fargate today).

use super::{Metric, Subject, Switch, count, push_present};
use crate::exposition::Sample;

pub(super) const SWITCH: Switch = Switch {
    name: "pids",
    default: true,
    help: "Container processes and threads, and their limit.",
};

pub(super) fn collect<'a>(c: &Subject<'a>, out: &mut Vec<Sample<'a>>) {
    let Some(pids) = c.stats.and_then(|s| s.pids_stats.as_ref()) else {
        return;
    };
    // Docker's "no limit" is 0; some runtimes write u64::MAX instead.
    let limit = pids.limit.filter(|&l| l != 0 && l != u64::MAX);
    let figures = [
        (Metric::ContainerPids, count(pids.current)),
        (Metric::ContainerPidsLimit, count(limit)),
    ];
    push_present(out, &figures, &[c.name]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::tests::{edge_samples as got, owned};

    /// A limit of 0 or 2^64 - 1 means none and is left out.
    #[test]
    fn pids_rules_at_the_edges() {
        assert_eq!(got(Metric::ContainerPids).len(), 3);
        assert_eq!(got(Metric::ContainerPidsLimit), owned(&[("none", 4096.0)]));
    }
}
