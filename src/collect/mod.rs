//! collect: the pure mapping from one scrape's documents to samples.
//!
//! Every family is a row of the one sorted table (`families`); every group of families is a file
//! here and a row of [`GROUPS`], node_exporter's shape: the row says whether the group has a
//! `--[no-]collector.NAME` switch (the Go exporter's families have none: they are always
//! written), its default and help line, and the function that writes its samples. The command
//! line builds its switches and help from [`GROUPS`]; nothing else lists the groups.
//! CONTRIBUTING.md says how to add one.

mod clock;
mod container;
mod container_labels;
mod container_network;
mod cpu;
mod exporter;
mod families;
mod identity;
mod memory;
mod network;
mod options;
mod pairing;
mod pids;
mod storage;
mod task;

pub use container_labels::{colliding as colliding_label_patterns, select as select_labels};
pub use exporter::{Answered, Exporter};
pub use families::{FAMILIES, Metric};
pub use options::Options;
pub use pairing::{Pairing, StatsIndex};

use crate::exposition::{MAX_LABELS, Sample};
use crate::model::{Container, ContainerStats, TaskMetadata, TaskStats};
use crate::tmds::Scope;
use crate::version::BuildInfo;

/// The group that writes `--ecs.container-labels`' labels.
pub const LABELS_GROUP: &str = container_labels::SWITCH.name;

/// The label that tells tasks apart when a scrape writes several (instance scope): the task's
/// ARN, the label `ecs_task_metadata_info` has always carried (so any family joins it with
/// `on(task_arn)`) and the value of Prometheus's `__meta_ecs_task_arn`.
pub const TASK_LABEL: &str = "task_arn";

// Docker's cpu_stats (upstream moby) and the Go exporter's timestamps are in nanoseconds. Written
// as Go writes the constant `1 / 1.0e9`, which is the f64 nearest to 1e-9, so that products
// round exactly as Go's do.
const NANOSECONDS: f64 = 1e-9;

// Task definition memory and Fargate ephemeral storage are in MiB; Prometheus uses bytes.
const MEBIBYTES: f64 = 1024.0 * 1024.0;

/// What one scrape produced: the documents that could be fetched and decoded, and the
/// exporter's own figures when exporter metrics are on.
pub struct Scrape<'a> {
    /// `/task` as a list of one, or `/tasks`; `None` if it could not be read.
    pub tasks: Option<&'a [TaskMetadata]>,
    /// `/task/stats` as a list of one, or `/tasks/stats`; `None` if it could not be read.
    pub stats: Option<&'a [TaskStats]>,
    /// In instance scope every task-level and container-level sample carries [`TASK_LABEL`].
    pub scope: Scope,
    pub exporter: Option<Exporter<'a>>,
    pub build: &'a BuildInfo,
    pub options: &'a Options,
}

/// One group of families: a file of this module.
pub struct Group {
    /// `--[no-]collector.NAME`, or `None` for the Go exporter's families, always written.
    pub switch: Option<Switch>,
    pub collect: Collect,
}

/// A group's command-line switch.
pub struct Switch {
    pub name: &'static str,
    pub default: bool,
    /// What the group writes, for `--help` (lines of at most 60 characters).
    pub help: &'static str,
}

/// What a group writes, from what.
pub enum Collect {
    /// From the task document.
    Task(for<'a> fn(&'a TaskMetadata, &mut Vec<Sample<'a>>)),
    /// From each container, `--ecs.containers-exclude` or not.
    EveryContainer(for<'a> fn(&Subject<'a>, &mut Vec<Sample<'a>>)),
    /// From each container that `--ecs.containers-exclude` leaves in.
    Container(for<'a> fn(&Subject<'a>, &mut Vec<Sample<'a>>)),
}

/// One container, its stats if it reported any, and its task.
pub struct Subject<'a> {
    pub task: &'a TaskMetadata,
    pub container: &'a Container,
    /// The `container_name` label.
    pub name: &'a str,
    pub stats: Option<&'a ContainerStats>,
}

/// Every group, in the order of `--help`.
pub static GROUPS: &[Group] = &[
    always(Collect::Task(task::collect)),
    always(Collect::EveryContainer(network::collect)),
    always(Collect::Container(container::restarts)),
    always(Collect::Container(cpu::usage)),
    always(Collect::Container(memory::go_families)),
    switch(container::SWITCH, Collect::Container(container::collect)),
    switch(memory::SWITCH, Collect::Container(memory::collect)),
    switch(cpu::SWITCH, Collect::Container(cpu::collect)),
    switch(storage::SWITCH, Collect::Container(storage::collect)),
    switch(pids::SWITCH, Collect::Container(pids::collect)),
    switch(
        container_network::SWITCH,
        Collect::Container(container_network::collect),
    ),
    switch(
        container_labels::SWITCH,
        Collect::Container(container_labels::collect),
    ),
    switch(identity::SWITCH, Collect::Task(identity::collect)),
    switch(clock::SWITCH, Collect::Task(clock::collect)),
];

/// A group of the Go exporter's families: always written, no switch.
const fn always(collect: Collect) -> Group {
    Group {
        switch: None,
        collect,
    }
}

/// A group with a `--[no-]collector.NAME` switch.
const fn switch(switch: Switch, collect: Collect) -> Group {
    Group {
        switch: Some(switch),
        collect,
    }
}

/// Collects the samples of one scrape and hands them to `batch` a task at a time (in no
/// particular order within a batch; the writer sorts), then the exporter's own in a last batch;
/// says what pairing containers with stats left unpaired. In instance scope the tasks come in
/// the order of their ARNs, and of tasks with one ARN only the last in `/tasks` is written, so
/// that the writer's batches keep each family sorted and free of repeated series. The first
/// error `batch` returns stops the collection and is returned.
pub fn collect<'a, E>(
    scrape: &Scrape<'a>,
    batch: &mut dyn FnMut(&[Sample<'a>]) -> Result<(), E>,
) -> Result<Pairing, E> {
    let mut out = Vec::with_capacity(64);
    let mut pairing = Pairing::default();
    if let Some(tasks) = scrape.tasks {
        let stats = scrape.stats.map(|stats| StatsIndex::new(tasks, stats));
        for task in in_order(tasks, scrape.scope) {
            collect_task(task, stats.as_ref(), scrape.options, &mut out);
            if scrape.scope == Scope::Instance {
                label_task(task, &mut out);
            }
            batch(&out)?;
            out.clear();
        }
        pairing = stats.map(|s| s.counts).unwrap_or_default();
    }
    let up = scrape.tasks.is_some() && scrape.stats.is_some();
    push(&mut out, Metric::Up, &[], if up { 1.0 } else { 0.0 });
    let b = scrape.build;
    push(
        &mut out,
        Metric::BuildInfo,
        &[b.goarch, b.goos, b.revision, b.rustversion, b.version],
        1.0,
    );
    if let Some(exporter) = &scrape.exporter {
        exporter::collect(exporter, &mut out);
    }
    batch(&out)?;
    Ok(pairing)
}

/// The tasks to write, in order: in instance scope by ARN, the last of a repeated ARN only.
fn in_order(tasks: &[TaskMetadata], scope: Scope) -> Vec<&TaskMetadata> {
    fn arn(task: &TaskMetadata) -> &str {
        task.task_arn.as_deref().unwrap_or("")
    }
    let mut order: Vec<&TaskMetadata> = tasks.iter().collect();
    if scope == Scope::Instance {
        // Stable: of one ARN, the last in the document comes last and is kept.
        crate::order::sort_by(&mut order, |a, b| arn(a).cmp(arn(b)));
        let mut kept: Vec<&TaskMetadata> = Vec::with_capacity(order.len());
        for task in order {
            match kept.last_mut() {
                Some(last) if arn(last) == arn(task) => *last = task,
                _ => kept.push(task),
            }
        }
        order = kept;
    }
    order
}

/// Puts the task's ARN on its samples, but for the families that name it already.
fn label_task<'a>(task: &'a TaskMetadata, samples: &mut [Sample<'a>]) {
    let arn = task.task_arn.as_deref().unwrap_or("");
    for sample in samples {
        let labels = FAMILIES.get(sample.family).map_or(&[][..], |f| f.labels);
        if !labels.contains(&TASK_LABEL) {
            sample.task = arn;
        }
    }
}

fn collect_task<'a>(
    task: &'a TaskMetadata,
    stats: Option<&StatsIndex<'a>>,
    options: &Options,
    out: &mut Vec<Sample<'a>>,
) {
    let groups = || GROUPS.iter().enumerate().filter(|&(i, _)| options.on(i));
    for (_, group) in groups() {
        if let Collect::Task(collect) = group.collect {
            collect(task, out);
        }
    }
    for container in task.containers.iter().flatten() {
        let name = container.name.as_deref().unwrap_or("");
        let subject = Subject {
            task,
            container,
            name,
            stats: container_stats(container, stats),
        };
        let included = !options.excludes(name);
        for (_, group) in groups() {
            match group.collect {
                Collect::EveryContainer(collect) => collect(&subject, out),
                Collect::Container(collect) if included => collect(&subject, out),
                _ => {}
            }
        }
    }
}

/// The container's stats entry, if it reported any stats (a stopped container's is `null` or
/// `{}`).
fn container_stats<'a>(
    container: &Container,
    stats: Option<&StatsIndex<'a>>,
) -> Option<&'a ContainerStats> {
    let id = container.docker_id.as_deref()?;
    stats?.get(id).filter(|s| s.reported)
}

/// Pushes each value that is present, all with the same labels. Values are converted as Go's
/// `float64(x)` converts them: the nearest f64, ties to even, so that counters past 2^53 round
/// as Go's do.
fn push_present<'a>(
    out: &mut Vec<Sample<'a>>,
    metrics: &[(Metric, Option<f64>)],
    labels: &[&'a str],
) {
    for &(metric, value) in metrics {
        if let Some(v) = value {
            push(out, metric, labels, v);
        }
    }
}

fn push<'a>(out: &mut Vec<Sample<'a>>, metric: Metric, values: &[&'a str], value: f64) {
    push_with(out, metric, values, &[], value);
}

/// [`push`] with labels the family does not name (see `Sample::extra`).
fn push_with<'a>(
    out: &mut Vec<Sample<'a>>,
    metric: Metric,
    values: &[&'a str],
    extra: &'a [(String, String)],
    value: f64,
) {
    let mut labels = [""; MAX_LABELS];
    for (slot, v) in labels.iter_mut().zip(values) {
        *slot = v;
    }
    debug_assert_eq!(
        values.len(),
        FAMILIES[metric as usize].labels.len(),
        "{metric:?}"
    );
    out.push(Sample {
        family: metric as usize,
        labels,
        task: "",
        extra,
        value,
    });
}

/// Unix seconds as the Go exporter computes its pull timestamps: `UnixNano()` as f64, then
/// scaled (which differs in the last digit from dividing).
fn timestamp(t: crate::model::UnixNanos) -> f64 {
    t.0 as f64 * NANOSECONDS
}

/// A count as Go's `float64(x)` converts it.
fn count(value: Option<u64>) -> Option<f64> {
    value.map(|v| v as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The samples of `metric` for one task and stats document, as (first label, value).
    pub(super) fn samples(task: &str, stats: &str, metric: Metric) -> Vec<(String, f64)> {
        let task = crate::model::decode_task(task.into())
            .expect("task JSON")
            .document;
        let stats = crate::model::decode_stats(stats.into(), std::slice::from_ref(&task))
            .expect("stats JSON")
            .document;
        let (tasks, stats) = ([task], [stats]);
        let scrape = Scrape {
            tasks: Some(&tasks),
            stats: Some(&stats),
            scope: Scope::Task,
            exporter: None,
            build: &crate::version::BUILD,
            options: &Options::default(),
        };
        let mut out = Vec::new();
        let _ = collect(&scrape, &mut |batch| {
            out.extend_from_slice(batch);
            Ok::<(), ()>(())
        });
        let mut found: Vec<(String, f64)> = out
            .iter()
            .filter(|s| s.family == metric as usize)
            .map(|s| (s.labels[0].to_owned(), s.value))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// One task of three containers, one network mode each, and their stats at the edges of
    /// the peers' families' rules: each group's test in its file reads what it writes.
    pub(super) const EDGE_TASK: &str = r#"{"Containers": [
        {"Name": "bridged", "DockerId": "1", "Networks": [{"NetworkMode": "Bridge"}]},
        {"Name": "host", "DockerId": "2", "Networks": [{"NetworkMode": "host"}]},
        {"Name": "none", "DockerId": "3"}]}"#;
    /// [`EDGE_TASK`]'s stats.
    pub(super) const EDGE_STATS: &str = r#"{
        "1": {"memory_stats": {"usage": 10, "max_usage": 0, "failcnt": 4,
                               "stats": {"anon": 1, "rss": 2, "total_rss": 3, "pgscan": 5}},
              "pids_stats": {"current": 3, "limit": 0},
              "blkio_stats": {"io_service_bytes_recursive": [
                  {"op": "Read", "value": "None"}, {"op": "read", "value": 7},
                  {"op": "Write", "value": "None"}]},
              "networks": {"eth0": {"rx_bytes": 11}}},
        "2": {"memory_stats": {"usage": 10, "max_usage": 12,
                               "stats": {"rss": 2, "total_rss": 3, "pgscan": 5}},
              "pids_stats": {"current": 4, "limit": 18446744073709551615},
              "blkio_stats": {"io_serviced_recursive": []},
              "networks": {"eth0": {"rx_bytes": 22}}},
        "3": {"memory_stats": {"usage": 10},
              "pids_stats": {"current": 5, "limit": 4096},
              "networks": {"eth0": {"rx_bytes": 33}}}}"#;

    /// [`samples`] of [`EDGE_TASK`] and [`EDGE_STATS`].
    pub(super) fn edge_samples(metric: Metric) -> Vec<(String, f64)> {
        samples(EDGE_TASK, EDGE_STATS, metric)
    }

    /// `(label, value)` rows as [`samples`] returns them.
    pub(super) fn owned(rows: &[(&str, f64)]) -> Vec<(String, f64)> {
        rows.iter().map(|&(l, v)| (l.to_owned(), v)).collect()
    }
}
