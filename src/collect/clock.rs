//! Group `clock`: how far the task's clock may be from UTC (`ClockDrift`, Fargate platform 1.4+
//! and Managed Instances). No peer exports it; a task whose clock is off signs AWS requests that
//! are refused and orders its logs wrongly.

use super::{Metric, Switch, push, push_present, timestamp};
use crate::exposition::Sample;
use crate::model::TaskMetadata;

pub(super) const SWITCH: Switch = Switch {
    name: "clock",
    default: true,
    help: "Task clock: error bound against UTC, synchronization status.",
};

/// `ClockErrorBound` is in milliseconds (AWS's documentation of the endpoint).
const MILLISECONDS: f64 = 1e-3;

pub(super) fn collect<'a>(task: &'a TaskMetadata, out: &mut Vec<Sample<'a>>) {
    let Some(clock) = &task.clock_drift else {
        return;
    };
    let bound = clock.error_bound.filter(|b| *b >= 0.0);
    let figures = [
        (Metric::TaskClockErrorBound, bound.map(|b| b * MILLISECONDS)),
        (Metric::TaskClockReference, clock.reference.map(timestamp)),
    ];
    push_present(out, &figures, &[]);
    let synchronized = match clock.status.as_deref() {
        Some("SYNCHRONIZED") => Some(1.0),
        Some("NOT_SYNCHRONIZED") => Some(0.0),
        _ => None,
    };
    if let Some(value) = synchronized {
        push(out, Metric::TaskClockSynchronized, &[], value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of `ecs_task_clock_synchronized` for a `ClockSynchronizationStatus` (JSON).
    fn synchronized(status: &str) -> Vec<f64> {
        let body = format!("{{\"ClockDrift\": {{\"ClockSynchronizationStatus\": {status}}}}}");
        let task = crate::model::decode_task(body).expect("decodes").document;
        let mut out = Vec::new();
        collect(&task, &mut out);
        out.iter()
            .filter(|s| s.family == Metric::TaskClockSynchronized as usize)
            .map(|s| s.value)
            .collect()
    }

    /// The alert on an unsynchronized clock needs the 0: only a status the agent does not
    /// document leaves the family out.
    #[test]
    fn both_statuses_are_written_and_no_other() {
        assert_eq!(synchronized("\"SYNCHRONIZED\""), [1.0]);
        assert_eq!(synchronized("\"NOT_SYNCHRONIZED\""), [0.0]);
        assert!(synchronized("\"UNKNOWN\"").is_empty());
        assert!(synchronized("null").is_empty());
    }
}
