//! Group `container`: what `/task` says of each container itself (info, known and health status,
//! exit code, start time), and the Go exporter's restart count.

use super::{Metric, Subject, Switch, push, timestamp};
use crate::exposition::Sample;

pub(super) const SWITCH: Switch = Switch {
    name: "container",
    default: true,
    help: "Container info, known and health status and since when, exit code,\nstart time.",
};

/// The Go exporter's restart count, from `/task`, so written for every container, with or
/// without stats: a container waiting to be restarted has none, and that is when its restart
/// count matters.
pub(super) fn restarts<'a>(c: &Subject<'a>, out: &mut Vec<Sample<'a>>) {
    if let Some(restarts) = c.container.restart_count.filter(|&r| r >= 0) {
        push(out, Metric::ContainerRestarts, &[c.name], restarts as f64);
    }
}

pub(super) fn collect<'a>(subject: &Subject<'a>, out: &mut Vec<Sample<'a>>) {
    let (c, name) = (subject.container, subject.name);
    let s = |field: &'a Option<String>| field.as_deref().unwrap_or("");
    let info = [
        s(&c.docker_id),
        name,
        s(&c.image),
        s(&c.image_id),
        s(&c.kind),
    ];
    push(out, Metric::ContainerInfo, &info, 1.0);
    if let Some(status) = &c.known_status {
        push(out, Metric::ContainerKnownStatus, &[name, status], 1.0);
    }
    if let Some(health) = &c.health
        && let Some(status) = health.status.as_deref()
    {
        push(out, Metric::ContainerHealth, &[name, status], 1.0);
        if let Some(since) = health.since {
            let since = timestamp(since);
            push(out, Metric::ContainerHealthSince, &[name, status], since);
        }
    }
    if let Some(code) = c.exit_code {
        push(out, Metric::ContainerExitCode, &[name], code as f64);
    }
    if let Some(t) = c.started_at {
        push(out, Metric::ContainerStartTime, &[name], timestamp(t));
    }
}
