//! The metadata documents as the exporter reads them: `/task` and `/task/stats`, and in instance
//! scope `/tasks` and `/tasks/stats`, arrays of the same documents, one per task.
//!
//! The structs mirror the JSON, with `Option` wherever a field can be absent, `null`, or of the
//! wrong type; each struct is a `document!`, which declares a field and the JSON key that fills it in one row
//! (keys not listed are skipped unread). Decoding
//! (`decode`) is lenient field by field: a value of the wrong type (a string where a number
//! belongs, a negative or fractional counter, a number past `u64`) leaves only that field `None`,
//! and keys we do not use are skipped without being decoded; an element of `/tasks` or
//! `/tasks/stats` that is not an object is dropped. A document fails as a whole only when it is
//! not a JSON object (an array, for the instance's two), nests too deep, or would keep too much
//! (see `decode`).
//! miniserde's derive would reject the whole document for one bad field, so the visitors are
//! written by hand.
//!
//! Duplicate keys behave as in Go's `encoding/json`: a later scalar replaces an earlier one, a
//! later object is merged into the earlier one.

mod decode;

use miniserde::de::{Deserialize, Visitor};
use miniserde::make_place;

use decode::{Bounded, Fields, List, document, skip};
pub use decode::{DecodeError, Decoded};

make_place!(Place);

/// The most a document may keep once decoded (see `decode`): as much as its body may hold.
pub const MAX_DECODED: usize = crate::tmds::MAX_BODY as usize;

/// The same for `/tasks` and `/tasks/stats`.
pub const MAX_INSTANCE_DECODED: usize = crate::tmds::MAX_INSTANCE_BODY as usize;

/// Tasks kept of `/tasks` (their stats are kept by container id): ECS places at most a few dozen
/// tasks on one instance (awsvpc tasks need an ENI each, 120 on the largest with trunking).
pub const MAX_TASKS: usize = 256;

/// Containers kept per task: ECS allows 10 per task definition, and the agent adds a few of its
/// own (`~internal~ecs~pause`, Service Connect, FireLens).
pub const MAX_CONTAINERS: usize = 64;

/// Interfaces kept per container: a container has one or two (eth0 in bridge mode, the task's
/// ENI in awsvpc mode).
pub const MAX_INTERFACES: usize = 16;

/// Labels kept per container: the agent sets five, and a task definition a few more.
pub const MAX_LABELS_PER_CONTAINER: usize = 64;

document! {
    /// `GET ${ECS_CONTAINER_METADATA_URI_V4}/task`.
    pub struct TaskMetadata {
        "Cluster" => cluster: Option<String>,
        "TaskARN" => task_arn: Option<String>,
        "Family" => family: Option<String>,
        "Revision" => revision: Option<String>,
        "DesiredStatus" => desired_status: Option<String>,
        "KnownStatus" => known_status: Option<String>,
        "AvailabilityZone" => availability_zone: Option<String>,
        "LaunchType" => launch_type: Option<String>,
        "Limits" => limits: Option<Limits>,
        "PullStartedAt" => pull_started_at: Option<UnixNanos>,
        "PullStoppedAt" => pull_stopped_at: Option<UnixNanos>,
        "EphemeralStorageMetrics" => ephemeral_storage: Option<EphemeralStorage>,
        "Containers" => containers: Option<Vec<Container>>,
        /// The service the task belongs to (EC2, Managed Instances).
        "ServiceName" => service_name: Option<String>,
        /// `service:NAME`, `family:NAME` or `daemon:NAME`.
        "Group" => group: Option<String>,
        /// The container instance's VPC (EC2).
        "VPCID" => vpc_id: Option<String>,
        "AvailabilityZoneID" => availability_zone_id: Option<String>,
        /// Fargate platform 1.4+, Managed Instances.
        "ClockDrift" => clock_drift: Option<ClockDrift>,
    }
}

document! {
    /// How far the task's clock may be from UTC, as the Amazon Time Sync Service measures it.
    pub struct ClockDrift {
        /// In milliseconds (AWS's documentation of the endpoint).
        "ClockErrorBound" => error_bound: Option<f64>,
        "ReferenceTimestamp" => reference: Option<UnixNanos>,
        /// `SYNCHRONIZED` or `NOT_SYNCHRONIZED`.
        "ClockSynchronizationStatus" => status: Option<String>,
    }
}

document! {
    /// Task limits (CPU in vCPUs, memory in MiB) or container limits (CPU in CPU units, memory in
    /// MiB): the same JSON shape.
    pub struct Limits {
        "CPU" => cpu: Option<f64>,
        "Memory" => memory: Option<i64>,
    }
}

document! {
    /// Fargate's `EphemeralStorageMetrics`, in MiB.
    pub struct EphemeralStorage {
        "Utilized" => utilized: Option<i64>,
        "Reserved" => reserved: Option<i64>,
    }
}

document! {
    pub struct Container {
        "DockerId" => docker_id: Option<String>,
        "Name" => name: Option<String>,
        "Image" => image: Option<String>,
        "ImageID" => image_id: Option<String>,
        "KnownStatus" => known_status: Option<String>,
        "Limits" => limits: Option<Limits>,
        "RestartCount" => restart_count: Option<i64>,
        "ExitCode" => exit_code: Option<i64>,
        "StartedAt" => started_at: Option<UnixNanos>,
        "Health" => health: Option<Health>,
        "Networks" => networks: Option<Vec<ContainerNetwork>>,
        /// `NORMAL` for the task definition's containers; `CNI_PAUSE` and others are the agent's.
        "Type" => kind: Option<String>,
        /// The container's labels (the agent's `com.amazonaws.ecs.*` and the task definition's),
        /// trimmed after decoding to those `--ecs.container-labels` selects.
        "Labels" => labels: Option<Keyed<String>>,
    }
}

document! {
    /// One of the container's network attachments in `/task`.
    pub struct ContainerNetwork {
        /// `awsvpc`, `bridge`, `host` or `none`.
        "NetworkMode" => network_mode: Option<String>,
    }
}

document! {
    /// A container's health check result; only present when the container has a health check.
    pub struct Health {
        "status" => status: Option<String>,
        /// When the status last changed.
        "statusSince" => since: Option<UnixNanos>,
    }
}

/// An RFC 3339 timestamp from the endpoint, as nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnixNanos(pub i128);

/// `GET ${ECS_CONTAINER_METADATA_URI_V4}/task/stats`: `DockerId` to that container's stats.
/// An entry whose value is `null` (a stopped container on Fargate) is not kept.
pub type TaskStats = Keyed<ContainerStats>;

/// A JSON object with keys we do not know in advance, in document order.
#[derive(Debug)]
pub struct Keyed<T>(pub Vec<(String, T)>);

impl<T> Default for Keyed<T> {
    fn default() -> Self {
        Keyed(Vec::new())
    }
}

impl<T> Keyed<T> {
    /// The value for `key`; the last one where the key repeats, as with Go's maps.
    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// One container's Docker-style stats.
#[derive(Debug, Default)]
pub struct ContainerStats {
    /// Whether the entry held any of Docker's stats keys. A stopped container's entry is `{}` on
    /// EC2; like the Go exporter, we treat it as having no stats.
    pub reported: bool,
    pub cpu_stats: Option<CpuStats>,
    pub memory_stats: Option<MemoryStats>,
    pub blkio_stats: Option<BlkioStats>,
    pub networks: Option<Keyed<NetworkStats>>,
    pub pids_stats: Option<PidsStats>,
}

document! {
    pub struct CpuStats {
        "cpu_usage" => cpu_usage: Option<CpuUsage>,
    }
}

document! {
    /// Cumulative CPU time in nanoseconds.
    pub struct CpuUsage {
        "total_usage" => total_usage: Option<u64>,
        "usage_in_usermode" => usage_in_usermode: Option<u64>,
        "usage_in_kernelmode" => usage_in_kernelmode: Option<u64>,
    }
}

document! {
    pub struct MemoryStats {
        "usage" => usage: Option<u64>,
        /// cgroup v1 only.
        "max_usage" => max_usage: Option<u64>,
        /// cgroup v1 only; Docker leaves it out when it is 0.
        "failcnt" => failcnt: Option<u64>,
        /// The limit the kernel enforces on the cgroup; "none" is a number from 2^62 up.
        "limit" => limit: Option<u64>,
        /// Boxed: most of a stats entry's size, and absent for a stopped container.
        "stats" => stats: Option<Box<MemoryDetail>>,
    }
}

/// The keys of `memory_stats.stats` the exporter reads: cgroup v1's (`cache`, `rss`,
/// hierarchical `total_*`) and v2's (`anon`, `file`, `file_mapped`, ...). Every other key is
/// skipped unread. Sorted by length and then by bytes (a test checks), so that a key is found by
/// a binary search that mostly compares lengths: each container's stats have some 40 keys,
/// looked up on every scrape.
pub const MEMORY_KEYS: [&str; 34] = [
    "rss",
    "anon",
    "file",
    "sock",
    "cache",
    "dirty",
    "shmem",
    "pgscan",
    "pgfault",
    "pgsteal",
    "anon_thp",
    "rss_huge",
    "total_rss",
    "writeback",
    "file_dirty",
    "pgmajfault",
    "active_file",
    "file_mapped",
    "mapped_file",
    "total_dirty",
    "unevictable",
    "kernel_stack",
    "inactive_file",
    "total_pgfault",
    "file_writeback",
    "total_rss_huge",
    "total_writeback",
    "slab_reclaimable",
    "total_pgmajfault",
    "total_active_file",
    "total_mapped_file",
    "total_unevictable",
    "slab_unreclaimable",
    "total_inactive_file",
];

/// The index of `key` in [`MEMORY_KEYS`], at compile time: a key the collector asks for that the
/// decoder does not keep fails the build.
pub const fn memory_key(key: &str) -> usize {
    let mut i = 0;
    while i < MEMORY_KEYS.len() {
        if str_eq(MEMORY_KEYS[i], key) {
            return i;
        }
        i += 1;
    }
    panic!("not in MEMORY_KEYS")
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The order of [`MEMORY_KEYS`].
fn by_length(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The values of [`MEMORY_KEYS`] in `memory_stats.stats`, by index; `None` where a key is
/// missing or not a count.
#[derive(Debug)]
pub struct MemoryDetail(pub [Option<u64>; MEMORY_KEYS.len()]);

impl Default for MemoryDetail {
    fn default() -> Self {
        MemoryDetail([None; MEMORY_KEYS.len()])
    }
}

impl MemoryDetail {
    pub fn get(&self, key: usize) -> Option<u64> {
        self.0.get(key).copied().flatten()
    }
}

document! {
    /// Processes and threads in the container's cgroup (EC2; `{}` on Fargate today).
    pub struct PidsStats {
        "current" => current: Option<u64>,
        "limit" => limit: Option<u64>,
    }
}

document! {
    pub struct BlkioStats {
        /// Bytes per device and operation.
        "io_service_bytes_recursive" => io_service_bytes_recursive: Option<Vec<BlkioEntry>>,
        /// Operations per device and operation (often `null` on cgroup v2).
        "io_serviced_recursive" => io_serviced_recursive: Option<Vec<BlkioEntry>>,
    }
}

document! {
    /// One device's count for one operation.
    pub struct BlkioEntry {
        "op" => op: Option<BlkioOp>,
        "value" => value: Option<u64>,
    }
}

/// The operations the exporter sums: `Read` and `Write` (lower case on cgroup v2). Decoded
/// without keeping the string, as a scrape meets a dozen entries per container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkioOp {
    Read,
    Write,
    /// `Sync`, `Async`, `Discard`, `Total` and anything else.
    Other,
}

document! {
    pub struct NetworkStats {
        "rx_bytes" => rx_bytes: Option<u64>,
        "rx_packets" => rx_packets: Option<u64>,
        "rx_errors" => rx_errors: Option<u64>,
        "rx_dropped" => rx_dropped: Option<u64>,
        "tx_bytes" => tx_bytes: Option<u64>,
        "tx_packets" => tx_packets: Option<u64>,
        "tx_errors" => tx_errors: Option<u64>,
        "tx_dropped" => tx_dropped: Option<u64>,
    }
}

const OBJECT: &str = "a JSON object";
const ARRAY: &str = "a JSON array";

/// Decodes a `/task` document.
pub fn decode_task(body: String) -> Result<Decoded<TaskMetadata>, DecodeError> {
    decode::decode(body, MAX_DECODED, OBJECT, Vec::new())
}

/// Decodes a `/task/stats` document, keeping the stats of the containers `tasks` holds (those
/// its `/task` kept): the rest are cut as the containers were.
pub fn decode_stats(
    body: String,
    tasks: &[TaskMetadata],
) -> Result<Decoded<TaskStats>, DecodeError> {
    decode::decode(body, MAX_DECODED, OBJECT, container_ids(tasks))
}

/// Decodes a `/tasks` document: every task on the instance, in the endpoint's order.
pub fn decode_tasks(body: String) -> Result<Decoded<Vec<TaskMetadata>>, DecodeError> {
    decode::decode(body, MAX_INSTANCE_DECODED, ARRAY, Vec::new())
        .map(|d| d.map(|List(tasks)| tasks))
}

/// Decodes a `/tasks/stats` document: one stats map per task (keyed by container id, as
/// `/task/stats`), in no order the exporter relies on. As with `/task/stats`, only the stats of
/// the containers of `tasks` are kept, so that whichever tasks `/tasks` kept, theirs are the
/// stats kept, whatever the order of the two arrays; a map left with none is dropped.
pub fn decode_tasks_stats(
    body: String,
    tasks: &[TaskMetadata],
) -> Result<Decoded<Vec<TaskStats>>, DecodeError> {
    decode::decode(body, MAX_INSTANCE_DECODED, ARRAY, container_ids(tasks))
        .map(|d| d.map(|List(stats)| stats))
}

/// The container ids of `tasks`.
fn container_ids(tasks: &[TaskMetadata]) -> Vec<&str> {
    let containers = tasks.iter().flat_map(|t| t.containers.iter().flatten());
    containers.filter_map(|c| c.docker_id.as_deref()).collect()
}

// ---------------------------------------------------------------------------------------------
// `ContainerStats`' fields, by hand: a key of Docker's also marks the entry as reported.

/// The top-level keys of Docker's stats object (moby `StatsJSON`).
const DOCKER_STATS_KEYS: &[&str] = &[
    "read",
    "preread",
    "pids_stats",
    "blkio_stats",
    "num_procs",
    "storage_stats",
    "cpu_stats",
    "precpu_stats",
    "memory_stats",
    "name",
    "id",
    "networks",
    "network_rate_stats",
];

impl Fields for ContainerStats {
    fn field(&mut self, key: &str) -> Option<&mut dyn Visitor> {
        if DOCKER_STATS_KEYS.contains(&key) {
            self.reported = true;
        }
        Some(match key {
            "cpu_stats" => Place::new(&mut self.cpu_stats),
            "memory_stats" => Place::new(&mut self.memory_stats),
            "blkio_stats" => Place::new(&mut self.blkio_stats),
            "networks" => Place::new(&mut self.networks),
            "pids_stats" => Place::new(&mut self.pids_stats),
            _ => return None,
        })
    }
}

impl Fields for MemoryDetail {
    fn field(&mut self, key: &str) -> Option<&mut dyn Visitor> {
        let i = MEMORY_KEYS.binary_search_by(|k| by_length(k, key)).ok()?;
        Some(Place::new(self.0.get_mut(i)?))
    }
}

impl Deserialize for TaskMetadata {
    fn begin(out: &mut Option<Self>) -> &mut dyn Visitor {
        Place::new(out)
    }
}

impl Deserialize for TaskStats {
    fn begin(out: &mut Option<Self>) -> &mut dyn Visitor {
        Place::new(out)
    }
}

impl Deserialize for List<TaskMetadata> {
    fn begin(out: &mut Option<Self>) -> &mut dyn Visitor {
        Place::new(out)
    }
}

impl Deserialize for List<TaskStats> {
    fn begin(out: &mut Option<Self>) -> &mut dyn Visitor {
        Place::new(out)
    }
}

// ---------------------------------------------------------------------------------------------
// The visitors of the document's own value types (the generic ones are in `decode`).

impl Visitor for Place<BlkioOp> {
    fn string(&mut self, s: &str) -> miniserde::Result<()> {
        self.out = Some(if s.eq_ignore_ascii_case("read") {
            BlkioOp::Read
        } else if s.eq_ignore_ascii_case("write") {
            BlkioOp::Write
        } else {
            BlkioOp::Other
        });
        Ok(())
    }
    skip!(null boolean negative nonnegative float seq map);
}

impl Visitor for Place<UnixNanos> {
    fn string(&mut self, s: &str) -> miniserde::Result<()> {
        self.out = crate::rfc3339::parse_unix_nanos(s)
            .map(UnixNanos)
            .or(self.out);
        Ok(())
    }
    skip!(null boolean negative nonnegative float seq map);
}

/// Elements of the lists and maps in the documents, and how many of each are kept.
impl Bounded for Container {
    const MAX: usize = MAX_CONTAINERS;
}
impl Bounded for NetworkStats {
    const MAX: usize = MAX_INTERFACES;
}
impl Bounded for ContainerNetwork {
    const MAX: usize = MAX_INTERFACES;
}
impl Bounded for BlkioEntry {}
/// Labels kept per container.
impl Bounded for String {
    const MAX: usize = MAX_LABELS_PER_CONTAINER;
}
/// Stats entries: those of the containers kept (`decode_stats`).
impl Bounded for ContainerStats {
    const CLAIMED_ONLY: bool = true;
}
/// Tasks of `/tasks`.
impl Bounded for TaskMetadata {
    const MAX: usize = MAX_TASKS;
}
/// Stats maps of `/tasks/stats`: as many as hold a kept container's stats.
impl Bounded for TaskStats {
    fn worth_keeping(&self) -> bool {
        !self.0.is_empty()
    }
}

/// A task document whose containers have these ids: what a stats document is decoded against.
#[cfg(test)]
pub(crate) fn tasks_of(ids: &[&str]) -> Vec<TaskMetadata> {
    let container = |id: &&str| Container {
        docker_id: Some((*id).to_owned()),
        ..Default::default()
    };
    vec![TaskMetadata {
        containers: Some(ids.iter().map(container).collect()),
        ..Default::default()
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use decode::{MAX_DEPTH, MAX_KEY};

    #[test]
    fn wrong_types_leave_only_that_field_absent() {
        let task = decode_task(
            r#"{"Cluster": 7, "Family": "f", "Revision": "3",
                "Limits": {"CPU": "0.25", "Memory": 512},
                "PullStartedAt": "yesterday", "PullStoppedAt": "2025-02-27T05:06:03Z",
                "EphemeralStorageMetrics": [1, 2],
                "Containers": [{"Name": "a", "DockerId": "1", "RestartCount": 1.5},
                               "not a container",
                               {"Name": ["b"], "DockerId": "2", "Limits": {"Memory": -1}}]}"#
                .into(),
        )
        .expect("a JSON object decodes")
        .document;
        assert_eq!(task.cluster, None);
        assert_eq!(task.family.as_deref(), Some("f"));
        let limits = task.limits.expect("limits object");
        assert_eq!(limits.cpu, None);
        assert_eq!(limits.memory, Some(512));
        assert_eq!(task.pull_started_at, None);
        assert_eq!(
            task.pull_stopped_at,
            Some(UnixNanos(1_740_632_763_000_000_000))
        );
        assert!(task.ephemeral_storage.is_none());
        let containers = task.containers.expect("containers");
        assert_eq!(containers.len(), 2, "the string element is dropped");
        assert_eq!(containers[0].name.as_deref(), Some("a"));
        assert_eq!(containers[0].restart_count, None);
        assert_eq!(containers[1].name, None);
        assert_eq!(
            containers[1].limits.as_ref().and_then(|l| l.memory),
            Some(-1)
        );
    }

    #[test]
    fn stats_entries_null_empty_and_partial() {
        let stats = decode_stats(
            r#"{"stopped-fargate": null, "stopped-ec2": {},
                "bad": {"memory_stats": {"usage": "None", "stats": {"cache": 5, "file": -1}},
                        "cpu_stats": {"cpu_usage": {"total_usage": 18446744073709551616}},
                        "networks": {"eth0": {"rx_bytes": 1, "tx_bytes": 2.5}, "eth1": null}},
                "dup": {"read": "x"}, "dup": {"memory_stats": {"usage": 9}}}"#
                .into(),
            &tasks_of(&["stopped-fargate", "stopped-ec2", "bad", "dup"]),
        )
        .expect("a JSON object decodes")
        .document;
        assert!(stats.get("stopped-fargate").is_none());
        assert!(!stats.get("stopped-ec2").expect("kept").reported);
        let bad = stats.get("bad").expect("kept");
        assert!(bad.reported);
        let memory = bad.memory_stats.as_ref().expect("memory_stats");
        assert_eq!(memory.usage, None);
        let detail = memory.stats.as_ref().expect("stats");
        let key = |k| detail.get(memory_key(k));
        assert_eq!((key("cache"), key("file")), (Some(5), None));
        let cpu = bad.cpu_stats.as_ref().and_then(|c| c.cpu_usage.as_ref());
        assert_eq!(cpu.and_then(|c| c.total_usage), None, "past u64 is absent");
        let networks = bad.networks.as_ref().expect("networks");
        assert_eq!(networks.0.len(), 1, "the null interface is dropped");
        assert_eq!(networks.0[0].0, "eth0");
        assert_eq!(
            (networks.0[0].1.rx_bytes, networks.0[0].1.tx_bytes),
            (Some(1), None)
        );
        let dup = stats.get("dup").expect("kept");
        assert_eq!(
            dup.memory_stats.as_ref().and_then(|m| m.usage),
            Some(9),
            "last one wins"
        );
    }

    #[test]
    fn memory_keys_are_sorted_for_binary_search() {
        assert!(
            MEMORY_KEYS
                .windows(2)
                .all(|w| by_length(w[0], w[1]).is_lt()),
            "{MEMORY_KEYS:?}"
        );
        for (i, key) in MEMORY_KEYS.iter().enumerate() {
            assert_eq!(memory_key(key), i);
        }
    }

    #[test]
    fn the_peers_fields_decode() {
        let stats = decode_stats(
            r#"{"a": {"memory_stats": {"usage": 9, "max_usage": 12, "failcnt": 3,
                        "stats": {"total_rss": 1, "rss": 2, "sock": 4, "swap": 5,
                                  "unevictable": "x", "writeback": 6}},
                      "pids_stats": {"current": 7, "limit": 18446744073709551615},
                      "blkio_stats": {"io_serviced_recursive": [{"op": "Read", "value": 8}]}}}"#
                .into(),
            &tasks_of(&["a"]),
        )
        .expect("a JSON object decodes")
        .document;
        let a = stats.get("a").expect("kept");
        let memory = a.memory_stats.as_ref().expect("memory_stats");
        assert_eq!((memory.max_usage, memory.failcnt), (Some(12), Some(3)));
        let detail = memory.stats.as_ref().expect("stats");
        let key = |k| detail.get(memory_key(k));
        assert_eq!(
            [key("total_rss"), key("rss"), key("sock"), key("writeback")],
            [Some(1), Some(2), Some(4), Some(6)]
        );
        assert_eq!(key("unevictable"), None, "a string is no count");
        assert_eq!(detail.0.iter().flatten().count(), 4, "swap is not kept");
        let pids = a.pids_stats.as_ref().expect("pids_stats");
        assert_eq!((pids.current, pids.limit), (Some(7), Some(u64::MAX)));
        let serviced = a
            .blkio_stats
            .as_ref()
            .and_then(|b| b.io_serviced_recursive.as_ref());
        assert_eq!(serviced.map(Vec::len), Some(1));

        let task = decode_task(
            r#"{"Containers": [{"Name": "a", "Networks": [{"NetworkMode": "bridge"},
                                                          {"NetworkMode": 1}]}]}"#
                .into(),
        )
        .expect("a JSON object decodes")
        .document;
        let containers = task.containers.expect("containers");
        let networks = containers[0].networks.as_ref().expect("networks");
        let modes: Vec<_> = networks.iter().map(|n| n.network_mode.as_deref()).collect();
        assert_eq!(modes, [Some("bridge"), None]);
    }

    #[test]
    fn whole_document_failures() {
        for body in [
            "",
            "[]",
            "\"x\"",
            "null",
            "{\"Cluster\": \"a\"",
            "{} trailing",
            "\u{feff}{}",
        ] {
            assert_eq!(
                decode_task(body.into()).err(),
                Some(DecodeError::Malformed(OBJECT)),
                "decoding {body:?}"
            );
        }
    }

    /// `levels` levels of arrays and objects under an unknown key, then a known one.
    fn nested(levels: usize) -> String {
        let pairs = levels / 2;
        format!(
            "{{\"Unknown\": {}1{}, \"Family\": \"f\"}}",
            "[{\"a\":".repeat(pairs),
            "}]".repeat(pairs)
        )
    }

    #[test]
    fn skipped_values_nest_as_deep_as_go_reads_them() {
        // Within miniserde's frames, and past them (blanked in place), up to Go's limit: the
        // value nobody reads costs only itself.
        for levels in [MAX_DEPTH, MAX_DEPTH + 2, 9_998] {
            let task = decode_task(nested(levels)).expect("decodes").document;
            assert_eq!(task.family.as_deref(), Some("f"), "{levels} levels");
        }
        assert_eq!(
            decode_task(nested(1_000_000)).err(),
            Some(DecodeError::TooDeep)
        );
        // Unbalanced, as a hostile body would be: stopped at Go's limit, not at the end.
        let open = format!("{{\"deep\": {}", "[".repeat(4_000_000));
        assert_eq!(decode_task(open).err(), Some(DecodeError::TooDeep));
        // A wrong-typed value nested deep is left out, the rest kept.
        let deep_name = format!(
            "{{\"Cluster\": {}{}, \"Family\": \"f\"}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        let task = decode_task(deep_name).expect("decodes").document;
        assert_eq!((task.cluster, task.family.as_deref()), (None, Some("f")));
    }

    #[test]
    fn lists_keep_their_bound_and_count_the_rest() {
        let containers = vec!["{\"Name\": \"c\"}"; MAX_CONTAINERS + 36].join(",");
        let decoded = decode_task(format!("{{\"Containers\": [{containers}]}}")).expect("decodes");
        assert_eq!(decoded.left_out, 36);
        assert_eq!(
            decoded.document.containers.map(|c| c.len()),
            Some(MAX_CONTAINERS)
        );
        let interfaces: Vec<String> = (0..MAX_INTERFACES + 4)
            .map(|i| format!("\"eth{i}\": {{\"rx_bytes\": {i}}}"))
            .collect();
        let stats = format!("{{\"a\": {{\"networks\": {{{}}}}}}}", interfaces.join(","));
        let decoded = decode_stats(stats, &tasks_of(&["a"])).expect("decodes");
        assert_eq!(decoded.left_out, 4);
        let a = decoded.document.get("a").expect("kept");
        assert_eq!(a.networks.as_ref().map(|n| n.0.len()), Some(MAX_INTERFACES));
    }

    #[test]
    fn what_a_document_keeps_is_charged_to_its_budget() {
        // 1,000 stats entries of about 220 bytes each need far more than 64 KiB.
        let ids: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        let entries: Vec<String> = ids
            .iter()
            .map(|i| format!("\"{i}\": {{\"read\": 0}}"))
            .collect();
        let stats = format!("{{{}}}", entries.join(","));
        let claimed = || ids.iter().map(String::as_str).collect();
        let decoded: Result<Decoded<TaskStats>, _> =
            decode::decode(stats.clone(), 64 << 10, OBJECT, claimed());
        assert_eq!(decoded.err(), Some(DecodeError::TooLarge(64 << 10)));
        let decoded: Result<Decoded<TaskStats>, _> =
            decode::decode(stats, MAX_DECODED, OBJECT, claimed());
        assert_eq!(decoded.map(|d| d.document.0.len()).ok(), Some(1000));
        assert_eq!(
            DecodeError::TooLarge(4 << 20).to_string(),
            "response would take more than 4096 KiB once decoded"
        );
    }

    #[test]
    fn a_long_string_is_kept_whole() {
        let long = "a".repeat(100_000);
        let body = format!("{{\"Cluster\": \"{long}\", \"Family\": \"f\"}}");
        let task = decode_task(body).expect("decodes").document;
        assert_eq!(task.cluster.as_deref(), Some(long.as_str()));
        assert_eq!(task.family.as_deref(), Some("f"));
    }

    /// A map key (a label's, a container id's) is held to the same bound as a string value.
    #[test]
    fn a_map_key_past_the_limit_is_left_out_with_its_value() {
        let long = "a".repeat(MAX_KEY + 1);
        let fits = "b".repeat(MAX_KEY);
        let body = format!(
            "{{\"Containers\": [{{\"Name\": \"app\", \"Labels\": {{\"{long}\": \"past\", \"{fits}\": \"at\"}}}}]}}"
        );
        let decoded = decode_task(body).expect("decodes");
        let containers = decoded.document.containers.unwrap_or_default();
        let labels: Vec<(String, String)> = containers
            .into_iter()
            .flat_map(|c| c.labels.map(|l| l.0).unwrap_or_default())
            .collect();
        assert_eq!(labels, [(fits, "at".to_owned())]);
        assert_eq!(decoded.left_out, 1);
    }

    #[test]
    fn a_lone_surrogate_loses_nothing_but_its_character() {
        let body = r#"{"Cluster": "a\ud800b", "Family": "f", "Unknown": "\udfff"}"#;
        let task = decode_task(body.into()).expect("decodes").document;
        assert_eq!(task.cluster.as_deref(), Some("a\u{fffd}b"));
        assert_eq!(task.family.as_deref(), Some("f"));
        // A valid pair stays a pair.
        let body = r#"{"Cluster": "\ud83d\ude00"}"#;
        let task = decode_task(body.into()).expect("decodes").document;
        assert_eq!(task.cluster.as_deref(), Some("\u{1f600}"));
    }
}
