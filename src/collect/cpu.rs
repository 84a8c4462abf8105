//! CPU time from each container's `cpu_stats.cpu_usage`: the Go exporter's total, always, and
//! group `cpu`'s user and system times.

use super::{Metric, NANOSECONDS, Subject, Switch, push_present};
use crate::exposition::Sample;
use crate::model::CpuUsage;

pub(super) const SWITCH: Switch = Switch {
    name: "cpu",
    default: true,
    help: "Container user and system CPU time.",
};

fn cpu_usage<'a>(c: &Subject<'a>) -> Option<&'a CpuUsage> {
    c.stats?.cpu_stats.as_ref()?.cpu_usage.as_ref()
}

/// Nanoseconds as Go scales them: to f64 first, then times [`NANOSECONDS`].
fn seconds(ns: Option<u64>) -> Option<f64> {
    ns.map(|ns| ns as f64 * NANOSECONDS)
}

/// The Go exporter's `ecs_container_cpu_usage_seconds_total`.
pub(super) fn usage<'a>(c: &Subject<'a>, out: &mut Vec<Sample<'a>>) {
    if let Some(cpu) = cpu_usage(c) {
        let total = [(Metric::ContainerCpuUsage, seconds(cpu.total_usage))];
        push_present(out, &total, &[c.name]);
    }
}

pub(super) fn collect<'a>(c: &Subject<'a>, out: &mut Vec<Sample<'a>>) {
    if let Some(cpu) = cpu_usage(c) {
        let times = [
            (Metric::ContainerCpuUser, seconds(cpu.usage_in_usermode)),
            (Metric::ContainerCpuSystem, seconds(cpu.usage_in_kernelmode)),
        ];
        push_present(out, &times, &[c.name]);
    }
}
