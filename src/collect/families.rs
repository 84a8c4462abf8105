//! The metric table: every family the exporter can write, sorted by name (a test checks), so
//! that the writer's table order is the exposition order Go's registry produces. Names, HELP
//! text and label names of the Go exporter's families are copied from v0.4.0 byte for byte.
//! A family is a row here; the group that writes it is a file beside this one.

use crate::exposition::Family;
use crate::exposition::Kind::{self, Counter, Gauge};

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
    ContainerCpuReserved => family("ecs_container_cpu_reserved_vcpus", Gauge, CONTAINER,
        "CPU the task definition reserves for the container in vCPUs (1 vCPU = 1024 CPU units): a relative weight among the containers that share the CPU, not a cap. Absent when none is set."),
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
    ContainerHealthSince => family("ecs_container_health_status_since_timestamp_seconds", Gauge, &["container_name", "status"],
        "Time the container's health status last changed, in seconds since the Unix epoch, for containers with a health check."),
    ContainerInfo => family("ecs_container_info", Gauge, &["container_id", "container_name", "image", "image_id", "type"],
        "Container image, runtime id and type (NORMAL, or the agent's own such as CNI_PAUSE), sourced from the task metadata endpoint version 4. The value is always 1."),
    ContainerKnownStatus => family("ecs_container_known_status", Gauge, &["container_name", "status"],
        "Container's last known status (PENDING, RUNNING, STOPPED, ...) in the status label. The value is always 1."),
    ContainerLabels => family("ecs_container_labels", Gauge, CONTAINER,
        "Container labels chosen with --ecs.container-labels, one label_NAME label each. The value is always 1."),
    ContainerMemoryActiveFile => family("ecs_container_memory_active_file_bytes", Gauge, CONTAINER,
        "Current memory on the container cgroup's active file LRU list in bytes."),
    ContainerMemoryAnonymous => family("ecs_container_memory_anonymous_bytes", Gauge, CONTAINER,
        "Current anonymous memory charged to the container cgroup in bytes, excluding file-backed memory."),
    ContainerMemoryAnonymousThp => family("ecs_container_memory_anonymous_thp_bytes", Gauge, CONTAINER,
        "Current anonymous memory backed by transparent huge pages in bytes."),
    ContainerMemoryDirty => family("ecs_container_memory_dirty_bytes", Gauge, CONTAINER,
        "Current dirty memory accounted to the container awaiting writeback in bytes."),
    ContainerMemoryEnforcedLimit => family("ecs_container_memory_enforced_limit_bytes", Gauge, CONTAINER,
        "Memory limit the kernel enforces on the container cgroup in bytes: the container's hard limit, else the task's, else the host's. Absent when there is none."),
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
    TaskClockErrorBound => family("ecs_task_clock_error_bound_seconds", Gauge, NONE,
        "Bound of the error of the task's clock against UTC in seconds, as the Amazon Time Sync Service measures it."),
    TaskClockReference => family("ecs_task_clock_reference_timestamp_seconds", Gauge, NONE,
        "Time of the reference the clock error bound was measured against, in seconds since the Unix epoch."),
    TaskClockSynchronized => family("ecs_task_clock_synchronized", Gauge, NONE,
        "Whether the last synchronization of the task's clock with the Amazon Time Sync Service succeeded: 1 if so, else 0."),
    TaskCpuLimit => family("ecs_task_cpu_limit_vcpus", Gauge, NONE,
            "Configured task CPU limit in vCPUs (1 vCPU = 1024 CPU units). This is optional when running on EC2; if no limit is set, this metric has no value."),
    TaskEphemeralAllocated => family("ecs_task_ephemeral_storage_allocated_bytes", Gauge, NONE,
            "Configured Fargate task ephemeral storage allocated size in bytes."),
    TaskEphemeralUsed => family("ecs_task_ephemeral_storage_used_bytes", Gauge, NONE,
            "Current Fargate task ephemeral storage usage in bytes."),
    TaskIdentity => family("ecs_task_identity_info", Gauge,
            &["account_id", "availability_zone_id", "group", "region", "service_name", "task_arn",
              "task_id", "vpc_id"],
            "Task identity: account, region and id from the task ARN, and the service, group, VPC and Availability Zone ID the task metadata endpoint gives. The value is always 1."),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::MAX_LABELS;

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
