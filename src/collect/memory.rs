//! Memory from each container's `memory_stats`: the Go exporter's usage, limit and page cache,
//! always, and group `memory`'s working set, maximum usage, limit failures and the families the
//! Go exporter's successors read from `memory_stats.stats`.

use super::{MEBIBYTES, Metric, Subject, Switch, count, push, push_present, task};
use crate::exposition::Sample;
use crate::model::memory_key;

pub(super) const SWITCH: Switch = Switch {
    name: "memory",
    default: true,
    help: "Container memory working set, maximum usage, enforced limit,\nlimit failures, and memory_stats.stats (anonymous, file, slab,\npage faults...).",
};

/// The Go exporter's usage, limit and page cache (the last fixed for cgroup v2).
pub(super) fn go_families<'a>(c: &Subject<'a>, out: &mut Vec<Sample<'a>>) {
    let Some(s) = c.stats else {
        return;
    };
    let memory = s.memory_stats.as_ref();
    let usage = memory.and_then(|m| m.usage);
    // The container's own limit, else the task's: the rule ECS uses to set the cgroup limit.
    // With neither there is no limit to report (the Go exporter crashes here).
    let container_mib = c
        .container
        .limits
        .as_ref()
        .and_then(|l| l.memory)
        .filter(|&m| m > 0);
    let limit = container_mib
        .or_else(|| task::memory_mib(c.task))
        .map(|mib| mib as f64 * MEBIBYTES);
    let detail = memory.and_then(|m| m.stats.as_ref());
    // Page cache is `cache` on cgroup v1 and `file` on cgroup v2.
    let page_cache = detail.and_then(|d| d.get(CACHE).or(d.get(FILE)));
    let figures = [
        (Metric::ContainerMemoryUsage, count(usage)),
        (Metric::ContainerMemoryLimit, limit),
        (Metric::ContainerMemoryPageCache, count(page_cache)),
    ];
    push_present(out, &figures, &[c.name]);
}

const CACHE: usize = memory_key("cache");
const FILE: usize = memory_key("file");
const ANON: usize = memory_key("anon");
const INACTIVE_FILE: [usize; 2] = [
    memory_key("total_inactive_file"),
    memory_key("inactive_file"),
];
/// Where a cgroup version has no such key: an index `MemoryDetail::get` finds nothing at.
const NO_KEY: usize = usize::MAX;

/// The keys of [`memory_key`] for `[v1 hierarchical, v1, v2]` names; `""` for none.
const fn keys(names: [&str; 3]) -> [usize; 3] {
    let mut out = [NO_KEY; 3];
    let mut i = 0;
    while i < 3 {
        if !names[i].is_empty() {
            out[i] = memory_key(names[i]);
        }
        i += 1;
    }
    out
}

/// The families read from `memory_stats.stats`, as the Go exporter's successors read them.
#[rustfmt::skip]
const MEMORY_DETAIL: [(Metric, [usize; 3]); 17] = [
    (Metric::ContainerMemoryAnonymous, keys(["total_rss", "rss", "anon"])),
    (Metric::ContainerMemoryAnonymousThp, keys(["total_rss_huge", "rss_huge", "anon_thp"])),
    (Metric::ContainerMemoryMappedFile, keys(["total_mapped_file", "mapped_file", "file_mapped"])),
    (Metric::ContainerMemoryActiveFile, keys(["total_active_file", "active_file", "active_file"])),
    (Metric::ContainerMemoryInactiveFile, keys(["total_inactive_file", "inactive_file", "inactive_file"])),
    (Metric::ContainerMemoryDirty, keys(["total_dirty", "dirty", "file_dirty"])),
    (Metric::ContainerMemoryWriteback, keys(["total_writeback", "writeback", "file_writeback"])),
    (Metric::ContainerMemoryUnevictable, keys(["total_unevictable", "unevictable", "unevictable"])),
    (Metric::ContainerMemoryShared, keys(["", "", "shmem"])),
    (Metric::ContainerMemoryKernelStack, keys(["", "", "kernel_stack"])),
    (Metric::ContainerMemorySocket, keys(["", "", "sock"])),
    (Metric::ContainerMemorySlabReclaimable, keys(["", "", "slab_reclaimable"])),
    (Metric::ContainerMemorySlabUnreclaimable, keys(["", "", "slab_unreclaimable"])),
    (Metric::ContainerMemoryFaults, keys(["total_pgfault", "pgfault", "pgfault"])),
    (Metric::ContainerMemoryMajorFaults, keys(["total_pgmajfault", "pgmajfault", "pgmajfault"])),
    (Metric::ContainerMemoryPagesScanned, keys(["", "", "pgscan"])),
    (Metric::ContainerMemoryPagesReclaimed, keys(["", "", "pgsteal"])),
];

/// A cgroup limit, unless it means "no limit": cgroup v1 writes 9223372036854771712 (2^63
/// rounded down to a page), v2 and some runtimes 18446744073709551615; like Datadog's check, any
/// value from 2^62 up is none.
fn enforced_limit(limit: Option<u64>) -> Option<u64> {
    limit.filter(|&l| l < 1 << 62)
}

/// Group `memory`. cgroup v2 is told by the key `anon` (Docker's v1 stats have `active_anon`
/// and `inactive_anon`, never `anon`); on v1 the hierarchical `total_KEY` is preferred to `KEY`,
/// as the peers and cAdvisor do. A missing key leaves its series out, never 0.
pub(super) fn collect<'a>(c: &Subject<'a>, out: &mut Vec<Sample<'a>>) {
    let Some(m) = c.stats.and_then(|s| s.memory_stats.as_ref()) else {
        return;
    };
    let name = c.name;
    let detail = m.stats.as_ref();
    let v2 = detail.is_some_and(|d| d.get(ANON).is_some());
    for (metric, [total, own, v2_key]) in MEMORY_DETAIL {
        let value = detail.and_then(|d| match v2 {
            true => d.get(v2_key),
            false => d.get(total).or(d.get(own)),
        });
        push_present(out, &[(metric, count(value))], &[name]);
    }
    // Not a peer's: what the OOM killer looks at. cAdvisor's rule: usage minus inactive file
    // pages, floored at 0 (hierarchical first on v1, as above).
    let [total, own] = INACTIVE_FILE;
    let inactive_file = detail.and_then(|d| d.get(total).or(d.get(own)));
    let working_set = m
        .usage
        .map(|u| u.saturating_sub(inactive_file.unwrap_or(0)));
    // The runtime's high-water mark (cgroup v1): 0 means it keeps none.
    let max_usage = m.max_usage.filter(|&u| u > 0);
    let figures = [
        (Metric::ContainerMemoryWorkingSet, count(working_set)),
        (Metric::ContainerMemoryMaxUsage, count(max_usage)),
        (
            Metric::ContainerMemoryEnforcedLimit,
            count(enforced_limit(m.limit)),
        ),
    ];
    push_present(out, &figures, &[name]);
    // cgroup v1 only. Docker leaves `failcnt` out when it is 0, so absent is 0 here.
    if !v2 {
        let failures = m.failcnt.unwrap_or(0) as f64;
        push(out, Metric::ContainerMemoryLimitFailures, &[name], failures);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "No limit" starts at 2^62 (cgroup v1's 2^63 rounded to a page is above it); a limit of
    /// 4 EiB less one byte is still one.
    #[test]
    fn a_limit_from_2_to_the_62_up_is_none() {
        assert_eq!(enforced_limit(Some((1 << 62) - 1)), Some((1 << 62) - 1));
        assert_eq!(enforced_limit(Some(1 << 62)), None);
        assert_eq!(enforced_limit(Some(9_223_372_036_854_771_712)), None);
        assert_eq!(enforced_limit(Some(u64::MAX)), None);
        assert_eq!(enforced_limit(Some(536_870_912)), Some(536_870_912));
    }

    /// The decoder keeps only the keys the collector reads: none kept for nothing.
    #[test]
    fn every_decoded_memory_key_is_read() {
        let read: Vec<usize> = MEMORY_DETAIL
            .iter()
            .flat_map(|(_, keys)| *keys)
            .chain([CACHE, FILE, ANON])
            .chain(INACTIVE_FILE)
            .collect();
        for (i, key) in crate::model::MEMORY_KEYS.iter().enumerate() {
            assert!(read.contains(&i), "{key} is decoded but never read");
        }
    }

    /// `anon` makes it cgroup v2: its keys only, and no v1 limit failures; a max usage of 0 is
    /// left out.
    #[test]
    fn memory_rules_at_the_edges() {
        use crate::collect::tests::{edge_samples as got, owned};
        assert_eq!(
            got(Metric::ContainerMemoryAnonymous),
            owned(&[("bridged", 1.0), ("host", 3.0)])
        );
        assert_eq!(
            got(Metric::ContainerMemoryPagesScanned),
            owned(&[("bridged", 5.0)])
        );
        assert_eq!(
            got(Metric::ContainerMemoryLimitFailures),
            owned(&[("host", 0.0), ("none", 0.0)])
        );
        assert_eq!(
            got(Metric::ContainerMemoryMaxUsage),
            owned(&[("host", 12.0)])
        );
    }
}
