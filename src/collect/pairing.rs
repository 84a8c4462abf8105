//! Pairing containers with their stats: by container id (a container's `DockerId`, a key of a
//! stats map), never by position. In task scope there is one task and one map; in instance scope
//! `/tasks` and `/tasks/stats` are two arrays whose orders need not agree, and a task may start or
//! stop between the two requests.
//!
//! What cannot be paired with certainty is not paired: an id that two stats maps hold, or that
//! containers of two tasks hold, gets no stats (its container still gets its metadata samples),
//! so that no container is ever shown another's figures. Within one map a repeated key is read
//! as Go reads a JSON object, the last value wins (the task-scope behaviour of the Go exporter).

use crate::model::{ContainerStats, TaskMetadata, TaskStats};
use crate::order::sort_by;

/// Every stats entry of a scrape, by container id.
pub struct StatsIndex<'a> {
    /// Sorted by id; `None` where the id is ambiguous.
    entries: Vec<(&'a str, Option<&'a ContainerStats>)>,
    pub counts: Pairing,
}

/// What pairing left unpaired, for the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pairing {
    /// Container ids held by more than one stats map, or by containers of more than one task:
    /// their stats are left out.
    pub ambiguous: usize,
}

impl<'a> StatsIndex<'a> {
    pub fn new(tasks: &'a [TaskMetadata], stats: &'a [TaskStats]) -> StatsIndex<'a> {
        let mut counts = Pairing::default();
        let mut entries = by_id(stats, &mut counts);
        let claimed = claimed(tasks);
        leave_out_shared(&claimed, &mut entries, &mut counts);
        StatsIndex { entries, counts }
    }

    /// The stats of the container with this id, if they can be told apart from any other's.
    pub fn get(&self, id: &str) -> Option<&'a ContainerStats> {
        let i = self.entries.binary_search_by(|e| e.0.cmp(id)).ok()?;
        self.entries.get(i)?.1
    }
}

/// Every stats entry by id, sorted; an id in more than one map is kept without stats and
/// counted as ambiguous. Within one map, the last entry of an id wins.
fn by_id<'a>(
    stats: &'a [TaskStats],
    counts: &mut Pairing,
) -> Vec<(&'a str, Option<&'a ContainerStats>)> {
    let mut all: Vec<(&str, usize, &ContainerStats)> = Vec::new();
    for (map, entries) in stats.iter().enumerate() {
        all.extend(entries.0.iter().map(|(id, s)| (id.as_str(), map, s)));
    }
    // Stable: within a map, entries of one id keep their document order.
    sort_by(&mut all, |a, b| a.0.cmp(b.0));
    let mut entries = Vec::with_capacity(all.len());
    for run in all.chunk_by(|a, b| a.0 == b.0) {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            continue;
        };
        let one_map = run.iter().all(|e| e.1 == first.1);
        if !one_map {
            counts.ambiguous += 1;
        }
        entries.push((first.0, one_map.then_some(last.2)));
    }
    entries
}

/// The container ids of the task documents, with the task that holds each, sorted, each pair
/// once.
fn claimed(tasks: &[TaskMetadata]) -> Vec<(&str, usize)> {
    let mut claimed: Vec<(&str, usize)> = Vec::new();
    for (task, metadata) in tasks.iter().enumerate() {
        let ids = metadata.containers.iter().flatten();
        claimed.extend(ids.filter_map(|c| Some((c.docker_id.as_deref()?, task))));
    }
    sort_by(&mut claimed, Ord::cmp);
    claimed.dedup();
    claimed
}

/// Takes the stats of ids that containers of more than one task claim, counting them.
fn leave_out_shared(
    claimed: &[(&str, usize)],
    entries: &mut [(&str, Option<&ContainerStats>)],
    counts: &mut Pairing,
) {
    for run in claimed.chunk_by(|a, b| a.0 == b.0) {
        let Some(&(id, _)) = run.first() else {
            continue;
        };
        let found = entries.binary_search_by(|e| e.0.cmp(id)).ok();
        if let Some(entry) = found.and_then(|i| entries.get_mut(i))
            && run.len() > 1
            && entry.1.take().is_some()
        {
            counts.ambiguous += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{decode_tasks, decode_tasks_stats};

    fn usage(stats: Option<&ContainerStats>) -> Option<u64> {
        stats?.memory_stats.as_ref()?.usage
    }

    #[test]
    fn pairs_by_id_whatever_the_order_and_leaves_out_what_is_ambiguous() {
        let tasks = decode_tasks(
            r#"[{"Containers": [{"DockerId": "a"}, {"DockerId": "b"}, {"DockerId": "shared"}]},
                {"Containers": [{"DockerId": "c"}, {"DockerId": "shared"}, {"DockerId": "x"}]},
                {"Containers": [{"DockerId": "d"}, {"DockerId": "d"}]}]"#
                .into(),
        )
        .expect("tasks")
        .document;
        let stats = decode_tasks_stats(
            r#"[{"c": {"memory_stats": {"usage": 3}}, "x": {"memory_stats": {"usage": 24}}},
                {"a": {"memory_stats": {"usage": 1}}, "b": {"memory_stats": {"usage": 2}},
                 "a": {"memory_stats": {"usage": 11}}, "shared": {"memory_stats": {"usage": 9}}},
                {"d": {"memory_stats": {"usage": 4}}, "orphan": {"memory_stats": {"usage": 5}},
                 "x": {"memory_stats": {"usage": 25}}}]"#
                .into(),
            &tasks,
        )
        .expect("stats");
        // No task claims "orphan": left out as the stats are decoded.
        assert_eq!(stats.unclaimed, 1);
        let stats = stats.document;
        let index = StatsIndex::new(&tasks, &stats);
        // By id, across maps in another order than the tasks'; a key repeated within one map:
        // the last value, as Go reads it.
        assert_eq!(usage(index.get("a")), Some(11));
        assert_eq!(usage(index.get("b")), Some(2));
        assert_eq!(usage(index.get("c")), Some(3));
        // Two containers of one task with one id: both get it, as in task scope.
        assert_eq!(usage(index.get("d")), Some(4));
        // Claimed by two tasks; present in two maps: neither is guessed.
        assert_eq!(usage(index.get("shared")), None);
        assert_eq!(usage(index.get("x")), None);
        assert_eq!(usage(index.get("nobody")), None);
        assert_eq!(index.counts, Pairing { ambiguous: 2 });
    }

    #[test]
    fn nothing_to_pair() {
        let index = StatsIndex::new(&[], &[]);
        assert_eq!(index.get("a").map(|_| ()), None);
        assert_eq!(index.counts, Pairing::default());
    }
}
