//! Conformance with the Go exporter v0.4.0 and robustness on real payloads, using the data in
//! `../shared` in place (never copied into the project). Fails when `CI` is set and `../shared`
//! is missing; otherwise says it skipped.

mod common;

use std::path::Path;

use common::{Endpoint, Exporter, Series, parse_exposition, shared_dir, value};

/// The Go exporter's 20 families. With every collector group on, these must match its
/// snapshots byte for byte; the families we add are left out of the comparison.
const GO_FAMILIES: &[&str] = &[
    "ecs_task_metadata_info",
    "ecs_task_cpu_limit_vcpus",
    "ecs_task_memory_limit_bytes",
    "ecs_task_ephemeral_storage_used_bytes",
    "ecs_task_ephemeral_storage_allocated_bytes",
    "ecs_task_image_pull_start_timestamp_seconds",
    "ecs_task_image_pull_stop_timestamp_seconds",
    "ecs_container_restarts_total",
    "ecs_container_cpu_usage_seconds_total",
    "ecs_container_memory_usage_bytes",
    "ecs_container_memory_limit_bytes",
    "ecs_container_memory_page_cache_size_bytes",
    "ecs_network_receive_bytes_total",
    "ecs_network_receive_packets_total",
    "ecs_network_receive_errors_total",
    "ecs_network_receive_packets_dropped_total",
    "ecs_network_transmit_bytes_total",
    "ecs_network_transmit_packets_total",
    "ecs_network_transmit_errors_total",
    "ecs_network_transmit_packets_dropped_total",
];

fn scrape(task: &Path, stats: &Path, flags: &[&str]) -> String {
    let endpoint = Endpoint::files(task, stats);
    let uri = format!("--ecs.metadata-uri={}", endpoint.base);
    let mut args = vec![uri.as_str(), "--web.disable-exporter-metrics"];
    args.extend(flags);
    let exporter = Exporter::start(&args);
    let text = exporter.metrics();
    assert_eq!(endpoint.hits(), 2);
    text
}

/// Keeps the Go exporter's families, exactly as written.
fn go_families_only(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let name = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line)
            .split([' ', '{'])
            .next()
            .unwrap_or("");
        if GO_FAMILIES.contains(&name) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
#[cfg_attr(
    no_shared,
    ignore = "../shared is not beside the project (CONTRIBUTING.md, Tests)"
)]
fn go_snapshots_byte_for_byte_with_the_documented_fixes() {
    let shared = shared_dir();
    let go = shared.join("conformance/ecs_exporter-v0.4.0");
    // The one documented difference these fixtures show: on cgroup v2 (the EC2 fixture) page
    // cache is memory_stats.stats.file (25296896 and 19619840 in the fixture); Go reports 0.
    let fixes: &[(&str, &[(&str, &str)])] = &[
        ("fargate", &[]),
        (
            "ec2",
            &[
                (
                    "ecs_container_memory_page_cache_size_bytes{container_name=\"ecs-exporter\"} 0",
                    "ecs_container_memory_page_cache_size_bytes{container_name=\"ecs-exporter\"} 2.5296896e+07",
                ),
                (
                    "ecs_container_memory_page_cache_size_bytes{container_name=\"prometheus\"} 0",
                    "ecs_container_memory_page_cache_size_bytes{container_name=\"prometheus\"} 1.961984e+07",
                ),
            ],
        ),
    ];
    for &(case, replacements) in fixes {
        let fixtures = go.join("fixtures");
        let text = scrape(
            &fixtures.join(format!("{case}_task_metadata.json")),
            &fixtures.join(format!("{case}_task_stats.json")),
            &[],
        );
        let series = parse_exposition(&text);
        assert_eq!(value(&series, "ecs_up", &[]), Some(1.0), "{case}");
        let mut want = std::fs::read_to_string(go.join(format!("snapshots/{case}_metrics.txt")))
            .expect("snapshot");
        if !want.ends_with('\n') {
            want.push('\n');
        }
        for (from, to) in replacements {
            assert!(
                want.contains(from),
                "{case}: the snapshot no longer holds {from}"
            );
            want = want.replace(from, to);
        }
        assert_eq!(
            go_families_only(&text),
            want,
            "{case}: differs from the Go snapshot"
        );
    }
}

/// The peers' memory families as `../shared/peers.md` §2 lists them (name, type, HELP), read in
/// place: ours must carry the same three, byte for byte.
#[test]
#[cfg_attr(
    no_shared,
    ignore = "../shared is not beside the project (CONTRIBUTING.md, Tests)"
)]
fn the_peers_memory_families_have_their_names_types_and_help() {
    let peers = std::fs::read_to_string(shared_dir().join("peers.md")).expect("peers.md");
    let mut rows = 0;
    for line in peers.lines().filter(|l| l.starts_with("| ecs_container_")) {
        let cells: Vec<&str> = line
            .split(" | ")
            .map(|c| c.trim_matches([' ', '|']))
            .collect();
        let [name, kind, _, _, help] = cells[..] else {
            panic!("a row of five cells: {line}");
        };
        let family = ecs_exporter::collect::FAMILIES
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} is not exported"));
        let ours = match family.kind {
            ecs_exporter::exposition::Kind::Counter => "counter",
            ecs_exporter::exposition::Kind::Gauge => "gauge",
        };
        assert_eq!((ours, family.help), (kind, help), "{name}");
        assert_eq!(family.labels, ["container_name"], "{name}");
        rows += 1;
    }
    assert_eq!(rows, 19, "peers.md lists the 19 memory families");
}

/// A series (name and labels) and its exact value.
type Expected = (&'static str, &'static [(&'static str, &'static str)], f64);

/// One real payload pair and what must come out of it.
struct Payload {
    task: &'static str,
    stats: &'static str,
    /// Containers with CPU samples (those whose stats entry matches the task and reports stats).
    containers: &'static [&'static str],
    interfaces: &'static [&'static str],
    /// Some values, checked exactly.
    values: &'static [Expected],
    /// Families that must be absent.
    absent: &'static [&'static str],
}

const PAYLOADS: &[Payload] = &[
    Payload {
        task: "otelcontrib-ec2-bridge.task.json",
        stats: "otelcontrib-ec2-bridge.stats.json",
        containers: &["nginx100", "nginx200", "nginx300"],
        interfaces: &["eth0", "eth1"],
        // eth0 from nginx200, the last container in /task's order.
        values: &[
            (
                "ecs_network_receive_bytes_total",
                &[("interface", "eth0")],
                2156.0,
            ),
            (
                "ecs_container_memory_limit_bytes",
                &[("container_name", "nginx100")],
                134217728.0,
            ),
            ("ecs_task_cpu_limit_vcpus", &[], 0.5),
        ],
        absent: &[],
    },
    Payload {
        task: "otelcontrib-ecsutil-ec2.task.json",
        stats: "otelcontrib-ec2-bridge.stats.json",
        containers: &["nginx100", "nginx200", "nginx300"],
        interfaces: &["eth0", "eth1"],
        values: &[("ecs_task_ephemeral_storage_used_bytes", &[], 524288000.0)],
        absent: &["ecs_task_cpu_limit_vcpus", "ecs_task_memory_limit_bytes"],
    },
    Payload {
        task: "otelcontrib-fargate-stopped.task.json",
        stats: "otelcontrib-fargate-stopped.stats.json",
        containers: &["essential"],
        interfaces: &["eth1"],
        values: &[(
            "ecs_container_memory_usage_bytes",
            &[("container_name", "essential")],
            974848.0,
        )],
        absent: &[],
    },
    Payload {
        task: "awsdocs-ec2-awsvpc.task.json",
        stats: "awsdocs-ec2-awsvpc.stats.json",
        containers: &[],
        interfaces: &[],
        values: &[],
        absent: &[
            "ecs_task_cpu_limit_vcpus",
            "ecs_container_cpu_usage_seconds_total",
        ],
    },
    Payload {
        task: "awsdocs-fargate-2020.task.json",
        stats: "awsdocs-fargate-2020.stats.json",
        containers: &[],
        interfaces: &[],
        values: &[("ecs_task_memory_limit_bytes", &[], 536870912.0)],
        absent: &[],
    },
    Payload {
        task: "datadogagent-managedinstances-cgroupv2.task.json",
        stats: "datadogagent-managedinstances-cgroupv2.stats.json",
        containers: &[],
        interfaces: &[],
        // statusSince 2023-11-20T12:11:16.383262018Z; ClockErrorBound 0.573008 ms.
        values: &[
            ("ecs_task_cpu_limit_vcpus", &[], 1.0),
            (
                "ecs_container_health_status_since_timestamp_seconds",
                &[("container_name", "datadog-agent"), ("status", "HEALTHY")],
                1700482276.3832622,
            ),
            (
                "ecs_task_clock_error_bound_seconds",
                &[],
                0.0005730080000000001,
            ),
            ("ecs_task_clock_synchronized", &[], 1.0),
        ],
        absent: &["ecs_container_cpu_reserved_vcpus"],
    },
    Payload {
        task: "datadogagent-managedinstances-cgroupv2.task.json",
        stats: "datadogagent-managedinstances-cgroupv2-nonetworks.stats.json",
        containers: &[],
        interfaces: &[],
        values: &[],
        absent: &[],
    },
    Payload {
        task: "ddintegrations-fargate-v4.task.json",
        stats: "ddintegrations-fargate-v4.stats.json",
        containers: &["apmtest-ping", "dd-agent"],
        interfaces: &["eth1"],
        values: &[
            (
                "ecs_container_memory_page_cache_size_bytes",
                &[("container_name", "dd-agent")],
                5136384.0,
            ),
            // ClockErrorBound 0.4347665 ms, ReferenceTimestamp 2023-06-20T01:18:13Z.
            ("ecs_task_clock_error_bound_seconds", &[], 0.0004347665),
            (
                "ecs_task_clock_reference_timestamp_seconds",
                &[],
                1687223893.0,
            ),
        ],
        absent: &[],
    },
    Payload {
        task: "ddintegrations-fargate-v2.task.json",
        stats: "ddintegrations-fargate-v2.stats.json",
        containers: &["dd-agent", "redis", "~internal~ecs~pause"],
        // The 2017 payload has `network` (singular), which Docker no longer sends.
        interfaces: &[],
        values: &[(
            "ecs_container_memory_limit_bytes",
            &[("container_name", "redis")],
            268435456.0,
        )],
        absent: &[],
    },
    Payload {
        task: "ddintegrations-fargate-v2.task.json",
        stats: "ddintegrations-windows.stats.json",
        containers: &["dd-agent"],
        interfaces: &["Ethernet 3"],
        // blkio lists are the string "None" and there is no memory_stats.stats: the rest is served.
        values: &[
            (
                "ecs_container_cpu_usage_seconds_total",
                &[("container_name", "dd-agent")],
                17.03125,
            ),
            (
                "ecs_container_memory_usage_bytes",
                &[("container_name", "dd-agent")],
                210485248.0,
            ),
        ],
        absent: &["ecs_container_memory_page_cache_size_bytes"],
    },
    Payload {
        // cgroup v2 in awsvpc mode: no v1 families, no per-container network, `null`
        // io_serviced_recursive (no ops families), a STOPPED container with `{}` stats.
        task: "ecsexporter-pr112-ec2.task.json",
        stats: "ecsexporter-pr112-ec2.stats.json",
        containers: &["ecs-exporter", "main", "~internal~ecs~pause"],
        interfaces: &["eth0"],
        values: &[
            (
                "ecs_container_memory_anonymous_bytes",
                &[("container_name", "ecs-exporter")],
                39903232.0,
            ),
            (
                "ecs_container_memory_pages_scanned_total",
                &[("container_name", "main")],
                20826.0,
            ),
            ("ecs_container_pids", &[("container_name", "main")], 20.0),
            (
                "ecs_container_pids_limit",
                &[("container_name", "main")],
                404.0,
            ),
            // No container limit of its own: the cgroup holds the task's.
            (
                "ecs_container_memory_enforced_limit_bytes",
                &[("container_name", "main")],
                439066624.0,
            ),
            (
                "ecs_container_cpu_reserved_vcpus",
                &[("container_name", "ecs-exporter")],
                0.125,
            ),
            (
                "ecs_task_identity_info",
                &[
                    ("account_id", "829490980523"),
                    ("availability_zone_id", ""),
                    ("group", ""),
                    ("region", "us-east-1"),
                    ("service_name", "prom-ecs-exporter-fixtures-ec2"),
                    (
                        "task_arn",
                        "arn:aws:ecs:us-east-1:829490980523:task/prom-ecs-exporter-fixtures/1e76d951e76c4ea5ad410966ffde3bdb",
                    ),
                    ("task_id", "1e76d951e76c4ea5ad410966ffde3bdb"),
                    ("vpc_id", "vpc-033f2f6b3186233ca"),
                ],
                1.0,
            ),
            (
                "ecs_container_labels",
                &[
                    ("container_name", "main"),
                    (
                        "label_com_amazonaws_ecs_task_definition_family",
                        "ecs-exporter-fixtures-ec2",
                    ),
                    ("label_com_amazonaws_ecs_task_definition_version", "4"),
                ],
                1.0,
            ),
        ],
        absent: &[
            "ecs_task_cpu_limit_vcpus",
            "ecs_container_memory_limit_failures_total",
            "ecs_container_memory_max_usage_bytes",
            "ecs_container_network_receive_bytes_total",
            "ecs_container_storage_read_ops_total",
        ],
    },
    Payload {
        // cgroup v1 on Fargate: maximum usage, limit failures (absent, so 0), operations
        // summed over two devices; `pids_stats` is `{}`.
        task: "ecsexporter-pr112-fargate.task.json",
        stats: "ecsexporter-pr112-fargate.stats.json",
        containers: &["ecs-exporter", "main"],
        interfaces: &["eth1"],
        values: &[
            (
                "ecs_container_memory_max_usage_bytes",
                &[("container_name", "ecs-exporter")],
                69406720.0,
            ),
            (
                "ecs_container_memory_anonymous_bytes",
                &[("container_name", "main")],
                19329024.0,
            ),
            (
                "ecs_container_memory_limit_failures_total",
                &[("container_name", "main")],
                0.0,
            ),
            (
                "ecs_container_storage_read_ops_total",
                &[("container_name", "ecs-exporter")],
                121.0,
            ),
            (
                "ecs_container_storage_write_ops_total",
                &[("container_name", "ecs-exporter")],
                42.0,
            ),
        ],
        absent: &[
            "ecs_container_pids",
            "ecs_container_network_receive_bytes_total",
            "ecs_container_memory_pages_scanned_total",
        ],
    },
    Payload {
        // Bridge mode: each container has its own eth0. Per interface, Go's rule keeps the last
        // container's; per container, both are there.
        task: "ecsexporter-2025-02-ec2.task.json",
        stats: "ecsexporter-2025-02-ec2.stats.json",
        containers: &["ecs-exporter", "prometheus"],
        interfaces: &["eth0"],
        values: &[
            (
                "ecs_network_receive_bytes_total",
                &[("interface", "eth0")],
                108621.0,
            ),
            (
                "ecs_container_network_receive_bytes_total",
                &[("container_name", "prometheus"), ("interface", "eth0")],
                39003.0,
            ),
            (
                "ecs_container_network_receive_bytes_total",
                &[("container_name", "ecs-exporter"), ("interface", "eth0")],
                108621.0,
            ),
            (
                "ecs_container_network_transmit_bytes_total",
                &[("container_name", "prometheus"), ("interface", "eth0")],
                11482.0,
            ),
            (
                "ecs_container_pids",
                &[("container_name", "prometheus")],
                27.0,
            ),
        ],
        absent: &[
            "ecs_task_memory_limit_bytes",
            "ecs_container_memory_limit_failures_total",
        ],
    },
    Payload {
        task: "telegraf-cgroupv2-ec2-awsvpc.task.json",
        stats: "telegraf-cgroupv2-ec2-awsvpc.stats.json",
        containers: &["~internal~ecs~pause"],
        interfaces: &["eth0"],
        values: &[
            (
                "ecs_container_pids_limit",
                &[("container_name", "~internal~ecs~pause")],
                4618.0,
            ),
            (
                "ecs_container_memory_anonymous_bytes",
                &[("container_name", "~internal~ecs~pause")],
                45056.0,
            ),
        ],
        absent: &[
            "ecs_container_network_receive_bytes_total",
            "ecs_container_memory_limit_failures_total",
            "ecs_container_storage_read_ops_total",
        ],
    },
    Payload {
        // One container's stats object where a map of them belongs: decodes, matches nothing.
        task: "ddintegrations-fargate-v2.task.json",
        stats: "ecsagent-windows-synthetic.container-stats.json",
        containers: &[],
        interfaces: &[],
        values: &[],
        absent: &["ecs_container_cpu_usage_seconds_total"],
    },
];

fn labels_of(series: &[Series], family: &str, label: &str) -> Vec<String> {
    let mut values: Vec<String> = series
        .iter()
        .filter(|(n, _, _)| n == family)
        .filter_map(|(_, l, _)| l.iter().find(|(k, _)| k == label).map(|(_, v)| v.clone()))
        .collect();
    values.sort();
    values
}

#[test]
#[cfg_attr(
    no_shared,
    ignore = "../shared is not beside the project (CONTRIBUTING.md, Tests)"
)]
fn real_payloads_serve_everything_they_support() {
    let shared = shared_dir();
    let dir = shared.join("payloads");
    let mut written = std::collections::BTreeSet::new();
    for p in PAYLOADS {
        let what = format!("{} + {}", p.task, p.stats);
        let labels = "--ecs.container-labels=com.amazonaws.ecs.task-definition-*";
        let series = parse_exposition(&scrape(&dir.join(p.task), &dir.join(p.stats), &[labels]));
        assert_eq!(value(&series, "ecs_up", &[]), Some(1.0), "{what}");
        assert!(
            series.iter().any(|(n, _, _)| n == "ecs_task_metadata_info"),
            "{what}"
        );
        assert_eq!(
            labels_of(
                &series,
                "ecs_container_cpu_usage_seconds_total",
                "container_name"
            ),
            p.containers,
            "{what}"
        );
        assert_eq!(
            labels_of(&series, "ecs_network_receive_bytes_total", "interface"),
            p.interfaces,
            "{what}"
        );
        for &(name, labels, want) in p.values {
            assert_eq!(
                value(&series, name, labels),
                Some(want),
                "{what}: {name}{labels:?}"
            );
        }
        for name in p.absent {
            assert!(
                !series.iter().any(|(n, _, _)| n == name),
                "{what}: {name} should be absent"
            );
        }
        assert!(
            series.iter().all(|(_, _, v)| v.is_finite()),
            "{what}: every value is a number"
        );
        written.extend(series.into_iter().map(|(name, _, _)| name));
    }
    // Every task and container family, the peers' and ours included, comes out of some real
    // payload; but restarts, as no payload here comes from a task with a restart policy
    // (fixtures/ec2-cgroupv2 has one).
    let missing: Vec<&str> = ecs_exporter::collect::FAMILIES
        .iter()
        .map(|f| f.name)
        .filter(|name| name.starts_with("ecs_") && !written.contains(*name))
        .filter(|name| *name != "ecs_container_restarts_total")
        .collect();
    assert!(missing.is_empty(), "no real payload writes {missing:?}");
}
