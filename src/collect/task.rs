//! The Go exporter's task families, from `/task`: metadata info, CPU and memory limits,
//! ephemeral storage, image pull times. Always written.

use super::{MEBIBYTES, Metric, push, timestamp};
use crate::exposition::Sample;
use crate::model::TaskMetadata;

/// Writes the task's families.
pub(super) fn collect<'a>(task: &'a TaskMetadata, out: &mut Vec<Sample<'a>>) {
    let s = |field: &'a Option<String>| field.as_deref().unwrap_or("");
    push(
        out,
        Metric::TaskMetadataInfo,
        &[
            s(&task.availability_zone),
            s(&task.cluster),
            s(&task.desired_status),
            s(&task.family),
            s(&task.known_status),
            s(&task.launch_type),
            s(&task.revision),
            s(&task.task_arn),
        ],
        1.0,
    );

    // Task limits are optional on EC2, and ECS Managed Instances report CPU 0: either way the
    // task has no limit, and a gauge of 0 would read as "no CPU at all".
    let limits = task.limits.as_ref();
    if let Some(cpu) = limits.and_then(|l| l.cpu).filter(|&c| c > 0.0) {
        push(out, Metric::TaskCpuLimit, &[], cpu);
    }
    if let Some(mib) = memory_mib(task) {
        push(out, Metric::TaskMemoryLimit, &[], mib as f64 * MEBIBYTES);
    }
    if let Some(storage) = &task.ephemeral_storage {
        if let Some(mib) = storage.reserved.filter(|&m| m >= 0) {
            push(
                out,
                Metric::TaskEphemeralAllocated,
                &[],
                mib as f64 * MEBIBYTES,
            );
        }
        if let Some(mib) = storage.utilized.filter(|&m| m >= 0) {
            push(out, Metric::TaskEphemeralUsed, &[], mib as f64 * MEBIBYTES);
        }
    }
    if let Some(t) = task.pull_started_at {
        push(out, Metric::TaskPullStart, &[], timestamp(t));
    }
    if let Some(t) = task.pull_stopped_at {
        push(out, Metric::TaskPullStop, &[], timestamp(t));
    }
}

/// The task's memory limit in MiB, if it has one (0 is none).
pub(super) fn memory_mib(task: &TaskMetadata) -> Option<i64> {
    task.limits
        .as_ref()
        .and_then(|l| l.memory)
        .filter(|&m| m > 0)
}
