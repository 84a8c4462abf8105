//! CPU time from each container's `cpu_stats.cpu_usage`: the Go exporter's total, always, and
//! group `cpu`'s user and system times, with the CPU the task definition reserves.

use super::{Metric, NANOSECONDS, Subject, Switch, push, push_present};
use crate::exposition::Sample;
use crate::model::CpuUsage;

pub(super) const SWITCH: Switch = Switch {
    name: "cpu",
    default: true,
    help: "Container user and system CPU time, and the CPU reserved for it.",
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

/// CPU units per vCPU.
const UNITS_PER_VCPU: f64 = 1024.0;

/// The agent reports a container without a CPU reservation (or with 0 or 1 unit, which Docker
/// takes as 2 shares) as 2 units (amazon-ecs-agent `agent/handlers/v2/response.go`,
/// `minimumCPUUnit`): so 2 and less mean none.
const NO_RESERVATION: f64 = 2.0;

pub(super) fn collect<'a>(c: &Subject<'a>, out: &mut Vec<Sample<'a>>) {
    // From /task, so for every container, with or without stats.
    let units = c.container.limits.as_ref().and_then(|l| l.cpu);
    if let Some(units) = units.filter(|&u| u > NO_RESERVATION) {
        let vcpus = units / UNITS_PER_VCPU;
        push(out, Metric::ContainerCpuReserved, &[c.name], vcpus);
    }
    if let Some(cpu) = cpu_usage(c) {
        let times = [
            (Metric::ContainerCpuUser, seconds(cpu.usage_in_usermode)),
            (Metric::ContainerCpuSystem, seconds(cpu.usage_in_kernelmode)),
        ];
        push_present(out, &times, &[c.name]);
    }
}
