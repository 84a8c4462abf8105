//! The metric table and the pure mapping from one scrape's data to samples.
//!
//! Every family the exporter can write is in [`FAMILIES`], sorted by name (a test checks), so the
//! writer's table order is the exposition order Go's registry produces. Names, HELP text and
//! label names of the Go exporter's families are copied from v0.4.0 byte for byte.

use crate::exposition::Kind::{Counter, Gauge};
use crate::exposition::{Family, Kind, MAX_LABELS, Sample};
use crate::model::{
    BlkioEntry, BlkioOp, Container, ContainerStats, MemoryStats, NetworkStats, TaskMetadata,
    TaskStats, memory_key,
};
use crate::process::ProcessStats;
use crate::version::BuildInfo;

// Docker's cpu_stats (upstream moby) are in nanoseconds. Written as Go writes the constant
// `1 / 1.0e9`, which is the f64 nearest to 1e-9, so products round exactly as Go's do.
const NANOSECONDS: f64 = 1e-9;

// Task definition memory and Fargate ephemeral storage are in MiB; Prometheus uses bytes.
const MEBIBYTES: f64 = 1024.0 * 1024.0;

const CONTAINER: &[&str] = &["container_name"];
const CONTAINER_INTERFACE: &[&str] = &["container_name", "interface"];
const INTERFACE: &[&str] = &["interface"];
const NONE: &[&str] = &[];

const fn family(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    help: &'static str,
) -> Family {
    Family {
        name,
        help,
        kind,
        labels,
    }
}

/// Declares [`Metric`] and [`FAMILIES`] from one list, so a variant always indexes its family.
macro_rules! metrics {
    ($($variant:ident => $family:expr,)*) => {
        /// Every family, in the order of [`FAMILIES`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Metric { $($variant,)* }

        /// The metric table, sorted by name (a test checks), which is the exposition order.
        pub static FAMILIES: &[Family] = &[$($family,)*];
    };
}

metrics! {
    ContainerCpuSystem => family("ecs_container_cpu_system_seconds_total", Counter, CONTAINER,
        "Cumulative container CPU time spent in kernel mode in seconds."),
    ContainerCpuUsage => family("ecs_container_cpu_usage_seconds_total", Counter, CONTAINER,
            "Cumulative total container CPU usage in seconds."),
    ContainerCpuUser => family("ecs_container_cpu_user_seconds_total", Counter, CONTAINER,
        "Cumulative container CPU time spent in user mode in seconds."),
    ContainerExitCode => family("ecs_container_exit_code", Gauge, CONTAINER,
        "Exit code of a container that has exited."),
    ContainerHealth => family("ecs_container_health_status", Gauge, &["container_name", "status"],
        "Container health check status (HEALTHY, UNHEALTHY or UNKNOWN) in the status label, for containers with a health check. The value is always 1."),
    ContainerInfo => family("ecs_container_info", Gauge, &["container_name", "image", "image_id"],
        "Container image, sourced from the task metadata endpoint version 4. The value is always 1."),
    ContainerKnownStatus => family("ecs_container_known_status", Gauge, &["container_name", "status"],
        "Container's last known status (PENDING, RUNNING, STOPPED, ...) in the status label. The value is always 1."),
    ContainerMemoryActiveFile => family("ecs_container_memory_active_file_bytes", Gauge, CONTAINER,
        "Current memory on the container cgroup's active file LRU list in bytes."),
    ContainerMemoryAnonymous => family("ecs_container_memory_anonymous_bytes", Gauge, CONTAINER,
        "Current anonymous memory charged to the container cgroup in bytes, excluding file-backed memory."),
    ContainerMemoryAnonymousThp => family("ecs_container_memory_anonymous_thp_bytes", Gauge, CONTAINER,
        "Current anonymous memory backed by transparent huge pages in bytes."),
    ContainerMemoryDirty => family("ecs_container_memory_dirty_bytes", Gauge, CONTAINER,
        "Current dirty memory accounted to the container awaiting writeback in bytes."),
    ContainerMemoryInactiveFile => family("ecs_container_memory_inactive_file_bytes", Gauge, CONTAINER,
        "Current memory on the container cgroup's inactive file LRU list in bytes."),
    ContainerMemoryKernelStack => family("ecs_container_memory_kernel_stack_bytes", Gauge, CONTAINER,
        "Current memory allocated to the container's kernel stacks in bytes. Only available with cgroup v2."),
    ContainerMemoryLimit => family("ecs_container_memory_limit_bytes", Gauge, CONTAINER,
            "Configured container memory limit in bytes, set from the container-level limit in the task definition if any, otherwise the task-level limit."),
    ContainerMemoryLimitFailures => family("ecs_container_memory_limit_failures_total", Counter, CONTAINER,
        "Cumulative number of times a container cgroup memory charge encountered its limit. This is not an OOM kill count and is only available with cgroup v1."),
    ContainerMemoryMajorFaults => family("ecs_container_memory_major_page_faults_total", Counter, CONTAINER,
        "Cumulative number of container cgroup major page faults."),
    ContainerMemoryMappedFile => family("ecs_container_memory_mapped_file_bytes", Gauge, CONTAINER,
        "Current mapped file memory accounted to the container in bytes, including mapped tmpfs and shared memory."),
    ContainerMemoryMaxUsage => family("ecs_container_memory_max_usage_bytes", Gauge, CONTAINER,
        "Maximum container memory usage recorded by the runtime in bytes."),
    ContainerMemoryPageCache => family("ecs_container_memory_page_cache_size_bytes", Gauge, CONTAINER,
            "Current container memory page cache size in bytes. This is not a subset of used bytes."),
    ContainerMemoryFaults => family("ecs_container_memory_page_faults_total", Counter, CONTAINER,
        "Cumulative number of container cgroup page faults, including major faults."),
    ContainerMemoryPagesReclaimed => family("ecs_container_memory_pages_reclaimed_total", Counter, CONTAINER,
        "Cumulative number of container cgroup pages reclaimed. Only available with cgroup v2."),
    ContainerMemoryPagesScanned => family("ecs_container_memory_pages_scanned_total", Counter, CONTAINER,
        "Cumulative number of container cgroup pages scanned from the inactive LRU list. Only available with cgroup v2."),
    ContainerMemoryShared => family("ecs_container_memory_shared_bytes", Gauge, CONTAINER,
        "Current tmpfs, shared memory, and shared anonymous memory accounted to the container in bytes. Only available with cgroup v2."),
    ContainerMemorySlabReclaimable => family("ecs_container_memory_slab_reclaimable_bytes", Gauge, CONTAINER,
        "Current reclaimable kernel slab memory accounted to the container in bytes. Only available with cgroup v2."),
    ContainerMemorySlabUnreclaimable => family("ecs_container_memory_slab_unreclaimable_bytes", Gauge, CONTAINER,
        "Current unreclaimable kernel slab memory accounted to the container in bytes. Only available with cgroup v2."),
    ContainerMemorySocket => family("ecs_container_memory_socket_bytes", Gauge, CONTAINER,
        "Current network transmission buffer memory accounted to the container in bytes. Only available with cgroup v2."),
    ContainerMemoryUnevictable => family("ecs_container_memory_unevictable_bytes", Gauge, CONTAINER,
        "Current memory on the container cgroup's unevictable LRU list in bytes."),
    ContainerMemoryUsage => family("ecs_container_memory_usage_bytes", Gauge, CONTAINER,
            "Current container memory usage in bytes."),
    ContainerMemoryWorkingSet => family("ecs_container_memory_working_set_bytes", Gauge, CONTAINER,
        "Current container memory working set in bytes: usage minus inactive file pages, as cAdvisor, Docker and the ECS agent compute it."),
    ContainerMemoryWriteback => family("ecs_container_memory_writeback_bytes", Gauge, CONTAINER,
        "Current memory accounted to the container under writeback in bytes."),
    // Go's per-interface HELP texts, which say just as much of one container's interface (the
    // strings are stored once).
    ContainerNetworkRxBytes => family("ecs_container_network_receive_bytes_total", Counter, CONTAINER_INTERFACE,
        "Cumulative total size of network packets received in bytes."),
    ContainerNetworkRxErrors => family("ecs_container_network_receive_errors_total", Counter, CONTAINER_INTERFACE,
        "Cumulative total count of network errors in receiving."),
    ContainerNetworkRxDropped => family("ecs_container_network_receive_packets_dropped_total", Counter, CONTAINER_INTERFACE,
        "Cumulative total count of network packets dropped in receiving."),
    ContainerNetworkRxPackets => family("ecs_container_network_receive_packets_total", Counter, CONTAINER_INTERFACE,
        "Cumulative total count of network packets received."),
    ContainerNetworkTxBytes => family("ecs_container_network_transmit_bytes_total", Counter, CONTAINER_INTERFACE,
        "Cumulative total size of network packets transmitted in bytes."),
    ContainerNetworkTxErrors => family("ecs_container_network_transmit_errors_total", Counter, CONTAINER_INTERFACE,
        "Cumulative total count of network errors in transmit."),
    ContainerNetworkTxDropped => family("ecs_container_network_transmit_packets_dropped_total", Counter, CONTAINER_INTERFACE,
        "Cumulative total count of network packets dropped in transmit."),
    ContainerNetworkTxPackets => family("ecs_container_network_transmit_packets_total", Counter, CONTAINER_INTERFACE,
        "Cumulative total count of network packets transmitted."),
    ContainerPids => family("ecs_container_pids", Gauge, CONTAINER,
        "Current number of processes and threads in the container."),
    ContainerPidsLimit => family("ecs_container_pids_limit", Gauge, CONTAINER,
        "Maximum number of processes and threads the container may have, when a limit is set."),
    ContainerRestarts => family("ecs_container_restarts_total", Counter, CONTAINER,
            "Cumulative total count of container restarts. Only has a value if the container has been configured to restart on failure."),
    ContainerStartTime => family("ecs_container_start_time_seconds", Gauge, CONTAINER,
        "Time the container started, in seconds since the Unix epoch."),
    ContainerStorageRead => family("ecs_container_storage_read_bytes_total", Counter, CONTAINER,
        "Cumulative total bytes the container read from block devices, summed over devices."),
    ContainerStorageReadOps => family("ecs_container_storage_read_ops_total", Counter, CONTAINER,
        "Cumulative total read operations the container issued to block devices, summed over devices."),
    ContainerStorageWrite => family("ecs_container_storage_write_bytes_total", Counter, CONTAINER,
        "Cumulative total bytes the container wrote to block devices, summed over devices."),
    ContainerStorageWriteOps => family("ecs_container_storage_write_ops_total", Counter, CONTAINER,
        "Cumulative total write operations the container issued to block devices, summed over devices."),
    BuildInfo => family("ecs_exporter_build_info", Gauge,
            &["goarch", "goos", "revision", "rustversion", "version"],
            "A metric with a constant '1' value labeled by version, revision and rustversion from which ecs_exporter was built, and the goos and goarch for the build."),
    NetworkRxBytes => family("ecs_network_receive_bytes_total", Counter, INTERFACE,
            "Cumulative total size of network packets received in bytes."),
    NetworkRxErrors => family("ecs_network_receive_errors_total", Counter, INTERFACE,
            "Cumulative total count of network errors in receiving."),
    NetworkRxDropped => family("ecs_network_receive_packets_dropped_total", Counter, INTERFACE,
            "Cumulative total count of network packets dropped in receiving."),
    NetworkRxPackets => family("ecs_network_receive_packets_total", Counter, INTERFACE,
            "Cumulative total count of network packets received."),
    NetworkTxBytes => family("ecs_network_transmit_bytes_total", Counter, INTERFACE,
            "Cumulative total size of network packets transmitted in bytes."),
    NetworkTxErrors => family("ecs_network_transmit_errors_total", Counter, INTERFACE,
            "Cumulative total count of network errors in transmit."),
    NetworkTxDropped => family("ecs_network_transmit_packets_dropped_total", Counter, INTERFACE,
            "Cumulative total count of network packets dropped in transmit."),
    NetworkTxPackets => family("ecs_network_transmit_packets_total", Counter, INTERFACE,
            "Cumulative total count of network packets transmitted."),
    TaskCpuLimit => family("ecs_task_cpu_limit_vcpus", Gauge, NONE,
            "Configured task CPU limit in vCPUs (1 vCPU = 1024 CPU units). This is optional when running on EC2; if no limit is set, this metric has no value."),
    TaskEphemeralAllocated => family("ecs_task_ephemeral_storage_allocated_bytes", Gauge, NONE,
            "Configured Fargate task ephemeral storage allocated size in bytes."),
    TaskEphemeralUsed => family("ecs_task_ephemeral_storage_used_bytes", Gauge, NONE,
            "Current Fargate task ephemeral storage usage in bytes."),
    TaskPullStart => family("ecs_task_image_pull_start_timestamp_seconds", Gauge, NONE,
            "The time at which the task started pulling docker images for its containers."),
    TaskPullStop => family("ecs_task_image_pull_stop_timestamp_seconds", Gauge, NONE,
            "The time at which the task stopped (i.e. completed) pulling docker images for its containers."),
    TaskMemoryLimit => family("ecs_task_memory_limit_bytes", Gauge, NONE,
            "Configured task memory limit in bytes. This is optional when running on EC2; if no limit is set, this metric has no value."),
    TaskMetadataInfo => family("ecs_task_metadata_info", Gauge,
            &["availability_zone", "cluster", "desired_status", "family", "known_status",
              "launch_type", "revision", "task_arn"],
            "ECS task metadata, sourced from the task metadata endpoint version 4."),
    Up => family("ecs_up", Gauge, NONE,
            "Whether the last read of the ECS task metadata endpoint succeeded: 1 when both /task and /task/stats were fetched and decoded, else 0."),
    ProcessCpu => family("process_cpu_seconds_total", Counter, NONE,
            "Total user and system CPU time spent in seconds."),
    ProcessMaxFds => family("process_max_fds", Gauge, NONE, "Maximum number of open file descriptors."),
    ProcessNetworkRx => family("process_network_receive_bytes_total", Counter, NONE,
            "Number of bytes received by the process over the network."),
    ProcessNetworkTx => family("process_network_transmit_bytes_total", Counter, NONE,
            "Number of bytes sent by the process over the network."),
    ProcessOpenFds => family("process_open_fds", Gauge, NONE, "Number of open file descriptors."),
    ProcessResident => family("process_resident_memory_bytes", Gauge, NONE, "Resident memory size in bytes."),
    ProcessStartTime => family("process_start_time_seconds", Gauge, NONE,
            "Start time of the process since unix epoch in seconds."),
    ProcessVirtual => family("process_virtual_memory_bytes", Gauge, NONE, "Virtual memory size in bytes."),
    ProcessVirtualMax => family("process_virtual_memory_max_bytes", Gauge, NONE,
            "Maximum amount of virtual memory available in bytes."),
    ScrapesInFlight => family("promhttp_metric_handler_requests_in_flight", Gauge, NONE,
            "Current number of scrapes being served."),
    ScrapeRequests => family("promhttp_metric_handler_requests_total", Counter, &["code"],
            "Total number of scrapes by HTTP status code."),
}

/// What one scrape produced: the documents that could be fetched and decoded, and the
/// exporter's own figures when exporter metrics are on.
pub struct Scrape<'a> {
    pub task: Option<&'a TaskMetadata>,
    pub stats: Option<&'a TaskStats>,
    pub exporter: Option<Exporter<'a>>,
    pub build: &'a BuildInfo,
    pub options: &'a Options,
}

/// Which families beyond the Go exporter's to write, and for which containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Group `container`: info, known and health status, exit code, start time (from /task).
    pub container: bool,
    /// Group `memory`: working set, maximum usage, limit failures and the `memory_stats.stats`
    /// families of the Go exporter's successors.
    pub memory: bool,
    /// Group `cpu`: user and system CPU time.
    pub cpu: bool,
    /// Group `storage`: bytes and operations read and written.
    pub storage: bool,
    /// Group `pids`: processes and threads, and their limit.
    pub pids: bool,
    /// Group `container_network`: per-container interface counters in bridge mode.
    pub container_network: bool,
    /// Container name patterns (`*` matches any run of characters) whose containers get no
    /// container-level samples.
    pub exclude: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            container: true,
            memory: true,
            cpu: true,
            storage: true,
            pids: true,
            container_network: true,
            exclude: Vec::new(),
        }
    }
}

impl Options {
    fn excludes(&self, name: &str) -> bool {
        self.exclude
            .iter()
            .any(|pattern| wildcard_match(pattern, name))
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (none included)
/// and everything else matches itself. Greedy with one backtrack point: linear in practice.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The exporter's own metrics.
pub struct Exporter<'a> {
    pub process: &'a ProcessStats,
    pub answered: Answered,
    /// Metrics requests received and not yet answered, this one included.
    pub in_flight: u64,
}

/// Metrics requests answered so far, by status, for promhttp's counter. 200 and 503 (over
/// `--web.max-requests`, or while shutting down) occur; 500 never, as a scrape never fails as a
/// whole, but it is written from the start, as client_golang does, so that dashboards which
/// select `code="500"` find a series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answered {
    pub ok: u64,
    pub unavailable: u64,
}

/// Appends the samples of one scrape to `out` (in no particular order; the writer sorts).
pub fn collect<'a>(scrape: &Scrape<'a>, out: &mut Vec<Sample<'a>>) {
    let up = scrape.task.is_some() && scrape.stats.is_some();
    push(out, Metric::Up, &[], if up { 1.0 } else { 0.0 });
    let b = scrape.build;
    push(
        out,
        Metric::BuildInfo,
        &[b.goarch, b.goos, b.revision, b.rustversion, b.version],
        1.0,
    );
    if let Some(task) = scrape.task {
        collect_task(task, out);
        for container in task.containers.iter().flatten() {
            collect_container(task, container, scrape.stats, scrape.options, out);
        }
    }
    if let Some(exporter) = &scrape.exporter {
        collect_exporter(exporter, out);
    }
}

fn collect_task<'a>(task: &'a TaskMetadata, out: &mut Vec<Sample<'a>>) {
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
    if let Some(mib) = task_memory_mib(task) {
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
    // Go converts UnixNano() to float64 and then scales, so do we (the result differs in the
    // last digit from dividing).
    if let Some(t) = task.pull_started_at {
        push(out, Metric::TaskPullStart, &[], t.0 as f64 * NANOSECONDS);
    }
    if let Some(t) = task.pull_stopped_at {
        push(out, Metric::TaskPullStop, &[], t.0 as f64 * NANOSECONDS);
    }
}

fn task_memory_mib(task: &TaskMetadata) -> Option<i64> {
    task.limits
        .as_ref()
        .and_then(|l| l.memory)
        .filter(|&m| m > 0)
}

fn collect_container<'a>(
    task: &TaskMetadata,
    container: &'a Container,
    stats: Option<&'a TaskStats>,
    options: &Options,
    out: &mut Vec<Sample<'a>>,
) {
    let name = container.name.as_deref().unwrap_or("");
    let stats = container_stats(container, stats);
    // Network series are per interface, not per container, so exclusion leaves them alone.
    for (interface, n) in stats
        .iter()
        .flat_map(|s| s.networks.iter().flat_map(|n| &n.0))
    {
        push_network(n, &INTERFACE_FAMILIES, &[interface], out);
    }
    if options.excludes(name) {
        return;
    }

    // From /task, so served for every container, with or without stats: a container waiting
    // to be restarted has none, and that is when its restart count matters.
    if let Some(restarts) = container.restart_count.filter(|&r| r >= 0) {
        push(out, Metric::ContainerRestarts, &[name], restarts as f64);
    }
    if options.container {
        collect_container_state(container, name, out);
    }

    let Some(s) = stats else {
        return;
    };
    let cpu = s.cpu_stats.as_ref().and_then(|c| c.cpu_usage.as_ref());
    if let Some(cpu) = cpu {
        let seconds = |ns: Option<u64>| ns.map(|ns| ns as f64 * NANOSECONDS);
        push_present(
            out,
            &[(Metric::ContainerCpuUsage, seconds(cpu.total_usage))],
            &[name],
        );
        if options.cpu {
            let times = [
                (Metric::ContainerCpuUser, seconds(cpu.usage_in_usermode)),
                (Metric::ContainerCpuSystem, seconds(cpu.usage_in_kernelmode)),
            ];
            push_present(out, &times, &[name]);
        }
    }

    let memory = s.memory_stats.as_ref();
    let usage = memory.and_then(|m| m.usage);
    // The container's own limit, else the task's: the rule ECS uses to set the cgroup limit.
    // With neither there is no limit to report (the Go exporter crashes here).
    let container_mib = container
        .limits
        .as_ref()
        .and_then(|l| l.memory)
        .filter(|&m| m > 0);
    let limit = container_mib
        .or_else(|| task_memory_mib(task))
        .map(|mib| mib as f64 * MEBIBYTES);
    let detail = memory.and_then(|m| m.stats.as_ref());
    // Page cache is `cache` on cgroup v1 and `file` on cgroup v2.
    let page_cache = detail.and_then(|d| d.get(CACHE).or(d.get(FILE)));
    let memory_figures = [
        (Metric::ContainerMemoryUsage, usage.map(|u| u as f64)),
        (Metric::ContainerMemoryLimit, limit),
        (
            Metric::ContainerMemoryPageCache,
            page_cache.map(|c| c as f64),
        ),
    ];
    push_present(out, &memory_figures, &[name]);
    if let (true, Some(memory)) = (options.memory, memory) {
        collect_memory_detail(memory, name, out);
    }
    if options.storage {
        collect_storage(s, name, out);
    }
    if let (true, Some(pids)) = (options.pids, &s.pids_stats) {
        // Docker's "no limit" is 0; some runtimes write u64::MAX instead.
        let limit = pids.limit.filter(|&l| l != 0 && l != u64::MAX);
        let figures = [
            (Metric::ContainerPids, pids.current),
            (Metric::ContainerPidsLimit, limit),
        ];
        push_present(out, &figures, &[name]);
    }
    // In bridge mode the container has a network namespace, and so interfaces, of its own; in
    // awsvpc and host mode it shares the task's or the host's, which the per-interface families
    // already describe.
    let bridge = container.networks.iter().flatten().any(|n| {
        let mode = n.network_mode.as_deref().unwrap_or("");
        mode.eq_ignore_ascii_case("bridge")
    });
    if options.container_network && bridge {
        for (interface, n) in s.networks.iter().flat_map(|n| &n.0) {
            push_network(n, &CONTAINER_INTERFACE_FAMILIES, &[name, interface], out);
        }
    }
}

/// Group `container`: what /task says of the container itself.
fn collect_container_state<'a>(c: &'a Container, name: &'a str, out: &mut Vec<Sample<'a>>) {
    let s = |field: &'a Option<String>| field.as_deref().unwrap_or("");
    push(
        out,
        Metric::ContainerInfo,
        &[name, s(&c.image), s(&c.image_id)],
        1.0,
    );
    if let Some(status) = &c.known_status {
        push(out, Metric::ContainerKnownStatus, &[name, status], 1.0);
    }
    if let Some(status) = c.health.as_ref().and_then(|h| h.status.as_deref()) {
        push(out, Metric::ContainerHealth, &[name, status], 1.0);
    }
    if let Some(code) = c.exit_code {
        push(out, Metric::ContainerExitCode, &[name], code as f64);
    }
    // As the Go pull timestamps: UnixNano as f64, then scaled.
    if let Some(t) = c.started_at {
        push(
            out,
            Metric::ContainerStartTime,
            &[name],
            t.0 as f64 * NANOSECONDS,
        );
    }
}

const CACHE: usize = memory_key("cache");
const FILE: usize = memory_key("file");
const ANON: usize = memory_key("anon");
const INACTIVE_FILE: [usize; 2] = [
    memory_key("total_inactive_file"),
    memory_key("inactive_file"),
];
/// Where a cgroup version has no such key: an index [`MemoryDetail::get`] finds nothing at.
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

/// Group `memory`. cgroup v2 is told by the key `anon` (Docker's v1 stats have `active_anon`
/// and `inactive_anon`, never `anon`); on v1 the hierarchical `total_KEY` is preferred to `KEY`,
/// as the peers and cAdvisor do. A missing key leaves its series out, never 0.
fn collect_memory_detail<'a>(m: &MemoryStats, name: &'a str, out: &mut Vec<Sample<'a>>) {
    let detail = m.stats.as_ref();
    let v2 = detail.is_some_and(|d| d.get(ANON).is_some());
    for (metric, [total, own, v2_key]) in MEMORY_DETAIL {
        let value = detail.and_then(|d| match v2 {
            true => d.get(v2_key),
            false => d.get(total).or(d.get(own)),
        });
        push_present(out, &[(metric, value)], &[name]);
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
        (Metric::ContainerMemoryWorkingSet, working_set),
        (Metric::ContainerMemoryMaxUsage, max_usage),
    ];
    push_present(out, &figures, &[name]);
    // cgroup v1 only. Docker leaves `failcnt` out when it is 0, so absent is 0 here.
    if !v2 {
        let failures = m.failcnt.unwrap_or(0) as f64;
        push(out, Metric::ContainerMemoryLimitFailures, &[name], failures);
    }
}

/// Group `storage`: bytes and operations by direction, summed over devices.
fn collect_storage<'a>(s: &ContainerStats, name: &'a str, out: &mut Vec<Sample<'a>>) {
    let Some(b) = s.blkio_stats.as_ref() else {
        return;
    };
    let (bytes, ops) = (&b.io_service_bytes_recursive, &b.io_serviced_recursive);
    let figures = [
        (Metric::ContainerStorageRead, op_sum(bytes, BlkioOp::Read)),
        (Metric::ContainerStorageWrite, op_sum(bytes, BlkioOp::Write)),
        (Metric::ContainerStorageReadOps, op_sum(ops, BlkioOp::Read)),
        (
            Metric::ContainerStorageWriteOps,
            op_sum(ops, BlkioOp::Write),
        ),
    ];
    push_present(out, &figures, &[name]);
}

/// The sum over devices of `op`'s entries, or `None` when no entry of that op has a number (a
/// list of Windows' `"None"` values is no count of 0). Kept in u128 so that no number of
/// devices can overflow it before the conversion to f64.
fn op_sum(entries: &Option<Vec<BlkioEntry>>, op: BlkioOp) -> Option<f64> {
    let matching = entries.iter().flatten().filter(|e| e.op == Some(op));
    let values = matching.filter_map(|e| e.value).map(u128::from);
    values.reduce(|sum, v| sum + v).map(|sum| sum as f64)
}

/// The eight interface counters, in the order of both family lists below.
const INTERFACE_FAMILIES: [Metric; 8] = [
    Metric::NetworkRxBytes,
    Metric::NetworkRxPackets,
    Metric::NetworkRxErrors,
    Metric::NetworkRxDropped,
    Metric::NetworkTxBytes,
    Metric::NetworkTxPackets,
    Metric::NetworkTxErrors,
    Metric::NetworkTxDropped,
];
const CONTAINER_INTERFACE_FAMILIES: [Metric; 8] = [
    Metric::ContainerNetworkRxBytes,
    Metric::ContainerNetworkRxPackets,
    Metric::ContainerNetworkRxErrors,
    Metric::ContainerNetworkRxDropped,
    Metric::ContainerNetworkTxBytes,
    Metric::ContainerNetworkTxPackets,
    Metric::ContainerNetworkTxErrors,
    Metric::ContainerNetworkTxDropped,
];

/// One interface's counters. Per interface (Go's families) every container in awsvpc mode
/// reports the task's one interface, and where containers disagree the writer keeps the last
/// one, as Go does.
fn push_network<'a>(
    n: &NetworkStats,
    families: &[Metric; 8],
    labels: &[&'a str],
    out: &mut Vec<Sample<'a>>,
) {
    let values = [
        n.rx_bytes,
        n.rx_packets,
        n.rx_errors,
        n.rx_dropped,
        n.tx_bytes,
        n.tx_packets,
        n.tx_errors,
        n.tx_dropped,
    ];
    for (&metric, value) in families.iter().zip(values) {
        push_present(out, &[(metric, value)], labels);
    }
}

/// The container's stats entry, if it reported any stats (a stopped container's is `null` or
/// `{}`).
fn container_stats<'a>(
    container: &Container,
    stats: Option<&'a TaskStats>,
) -> Option<&'a ContainerStats> {
    let id = container.docker_id.as_deref()?;
    stats?.get(id).filter(|s| s.reported)
}

fn collect_exporter<'a>(exporter: &Exporter<'a>, out: &mut Vec<Sample<'a>>) {
    let p = exporter.process;
    let figures = [
        (Metric::ProcessCpu, p.cpu_seconds),
        (Metric::ProcessMaxFds, p.max_fds),
        (Metric::ProcessNetworkRx, p.network_receive_bytes),
        (Metric::ProcessNetworkTx, p.network_transmit_bytes),
        (Metric::ProcessOpenFds, p.open_fds),
        (Metric::ProcessResident, p.resident_bytes),
        (Metric::ProcessStartTime, p.start_time_seconds),
        (Metric::ProcessVirtual, p.virtual_bytes),
        (Metric::ProcessVirtualMax, p.virtual_max_bytes),
    ];
    push_present(out, &figures, &[]);
    push(out, Metric::ScrapesInFlight, &[], exporter.in_flight as f64);
    let a = exporter.answered;
    for (code, count) in [("200", a.ok), ("500", 0), ("503", a.unavailable)] {
        push(out, Metric::ScrapeRequests, &[code], count as f64);
    }
}

/// Go's `float64(x)`: the nearest f64 (ties to even), so counters past 2^53 round as Go's do.
trait GoFloat: Copy {
    fn go_float(self) -> f64;
}

impl GoFloat for u64 {
    fn go_float(self) -> f64 {
        self as f64
    }
}

impl GoFloat for f64 {
    fn go_float(self) -> f64 {
        self
    }
}

/// Pushes each value that is present, all with the same labels.
fn push_present<'a, T: GoFloat>(
    out: &mut Vec<Sample<'a>>,
    metrics: &[(Metric, Option<T>)],
    labels: &[&'a str],
) {
    for &(metric, value) in metrics {
        if let Some(v) = value {
            push(out, metric, labels, v.go_float());
        }
    }
}

fn push<'a>(out: &mut Vec<Sample<'a>>, metric: Metric, values: &[&'a str], value: f64) {
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
        value,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_patterns() {
        let rows: &[(&str, &str, bool)] = &[
            ("ecs-exporter", "ecs-exporter", true),
            ("ecs-exporter", "ecs-exporter2", false),
            ("ecs-*", "ecs-exporter", true),
            ("ecs-*", "ecs-", true),
            ("ecs-*", "ecs", false),
            ("*-sidecar", "envoy-sidecar", true),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("*~internal~*", "~internal~ecs~pause", true),
            ("a**b", "ab", true),
            ("*aab", "aaaab", true),
        ];
        for &(pattern, text, want) in rows {
            assert_eq!(
                wildcard_match(pattern, text),
                want,
                "{pattern:?} ~ {text:?}"
            );
        }
    }

    /// The samples of `metric` for one task and stats document, as (first label, value).
    fn samples(task: &str, stats: &str, metric: Metric) -> Vec<(String, f64)> {
        let task = crate::model::decode_task(task.into())
            .expect("task JSON")
            .document;
        let stats = crate::model::decode_stats(stats.into())
            .expect("stats JSON")
            .document;
        let scrape = Scrape {
            task: Some(&task),
            stats: Some(&stats),
            exporter: None,
            build: &crate::version::BUILD,
            options: &Options::default(),
        };
        let mut out = Vec::new();
        collect(&scrape, &mut out);
        let mut found: Vec<(String, f64)> = out
            .iter()
            .filter(|s| s.family == metric as usize)
            .map(|s| (s.labels[0].to_owned(), s.value))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// The rules of the peers' families at their edges, one container per case.
    #[test]
    fn peer_family_rules_at_the_edges() {
        let task = r#"{"Containers": [
            {"Name": "bridged", "DockerId": "1", "Networks": [{"NetworkMode": "Bridge"}]},
            {"Name": "host", "DockerId": "2", "Networks": [{"NetworkMode": "host"}]},
            {"Name": "none", "DockerId": "3"}]}"#;
        let stats = r#"{
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
        let got = |metric| samples(task, stats, metric);
        let owned = |rows: &[(&str, f64)]| -> Vec<(String, f64)> {
            rows.iter().map(|&(l, v)| (l.to_owned(), v)).collect()
        };
        // `anon` makes it cgroup v2: its keys only, and no v1 limit failures.
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
        assert_eq!(got(Metric::ContainerPids).len(), 3);
        assert_eq!(got(Metric::ContainerPidsLimit), owned(&[("none", 4096.0)]));
        // Only entries with a number count; an op with none is left out, not 0.
        assert_eq!(
            got(Metric::ContainerStorageRead),
            owned(&[("bridged", 7.0)])
        );
        assert_eq!(got(Metric::ContainerStorageWrite), owned(&[]));
        assert_eq!(got(Metric::ContainerStorageReadOps), owned(&[]));
        assert_eq!(
            got(Metric::ContainerNetworkRxBytes),
            owned(&[("bridged", 11.0)])
        );
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

    #[test]
    fn table_is_sorted_unique_and_matches_the_enum() {
        for pair in FAMILIES.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        // The Go exporter v0.4.0's 20 families are all here, under their names.
        let go = [
            "ecs_container_cpu_usage_seconds_total",
            "ecs_container_memory_limit_bytes",
            "ecs_container_memory_page_cache_size_bytes",
            "ecs_container_memory_usage_bytes",
            "ecs_container_restarts_total",
            "ecs_network_receive_bytes_total",
            "ecs_network_receive_errors_total",
            "ecs_network_receive_packets_dropped_total",
            "ecs_network_receive_packets_total",
            "ecs_network_transmit_bytes_total",
            "ecs_network_transmit_errors_total",
            "ecs_network_transmit_packets_dropped_total",
            "ecs_network_transmit_packets_total",
            "ecs_task_cpu_limit_vcpus",
            "ecs_task_ephemeral_storage_allocated_bytes",
            "ecs_task_ephemeral_storage_used_bytes",
            "ecs_task_image_pull_start_timestamp_seconds",
            "ecs_task_image_pull_stop_timestamp_seconds",
            "ecs_task_memory_limit_bytes",
            "ecs_task_metadata_info",
        ];
        for name in go {
            assert!(FAMILIES.iter().any(|f| f.name == name), "{name}");
        }
        for f in FAMILIES {
            assert!(
                f.labels.windows(2).all(|w| w[0] < w[1]),
                "{} labels sorted",
                f.name
            );
            assert!(f.labels.len() <= MAX_LABELS);
            assert!(
                !f.help.contains(['\\', '\n']),
                "{}: the writer copies HELP unescaped",
                f.name
            );
            let counter = f.name.ends_with("_total");
            assert_eq!(counter, f.kind == Kind::Counter, "{} type", f.name);
        }
    }
}
