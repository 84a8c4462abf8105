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
