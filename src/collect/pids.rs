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
