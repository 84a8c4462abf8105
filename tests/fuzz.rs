//! A seeded fuzzer over the in-process pipeline, decode -> collect -> write: documents from our
//! fixtures and ../shared's payloads, mutated (values swapped for values of other types, keys
//! duplicated, spans cut, copied and garbled, documents truncated), then decoded and written
//! with random collector switches. A quarter of the inputs are instance scope's arrays, built
//! from two or three documents and reshaped (elements dropped, repeated, reordered, replaced by
//! other types; an object where the array belongs). Every input must give output that parses
//! as valid exposition (no series twice, no label twice), and nothing may panic.
//!
//! `FUZZ_ITERATIONS` (default 20,000 for CI, 5,000 under emulation) and `FUZZ_SEED` set the run; the long run is
//! `FUZZ_ITERATIONS=1000000 cargo test --release --test fuzz -- --nocapture`. A failing input is
//! written under `target/fuzz-failures/`.

mod common;

use std::panic::AssertUnwindSafe;

use common::{Rng, parse_exposition, project_dir, shared_dir_if_present};
use ecs_exporter::collect::{Answered, Exporter, Options, Scrape};
use ecs_exporter::process::ProcessStats;
use ecs_exporter::scrape::{decode_stats, decode_tasks};
use ecs_exporter::tmds::Scope;
use ecs_exporter::version::BUILD;

const VALUES: &[&str] = &[
    "null",
    "true",
    "-1",
    "0",
    "1.5",
    "-0.0",
    "1e308",
    "18446744073709551615",
    "18446744073709551616",
    "9007199254740993",
    "\"\"",
    "\"None\"",
    "\"x\\\"y\\\\z\\n\"",
    "\"ü✓\\u0000\"",
    "[]",
    "{}",
    "[1, \"a\", null]",
    "{\"a\": [1, {\"b\": null}]}",
    "\"2025-02-27T05:06:03.714437592Z\"",
    "\"2025-13-45T99:99:99Z\"",
    "\"1970-01-01T00:00:00+23:59\"",
    "{\"status\": \"HEALTHY\"}",
    "[{\"op\": \"read\", \"value\": 5}]",
    "\"SYNCHRONIZED\"",
    "\"NOT_SYNCHRONIZED\"",
    "{\"a.b\": \"1\", \"a-b\": \"2\", \"\": \"3\"}",
    "\"arn:aws:ecs:eu-west-1:123456789012:task/c/0123\"",
    "4611686018427387904",
];

const KEYS: &[&str] = &[
    "Name",
    "DockerId",
    "Limits",
    "Memory",
    "CPU",
    "Containers",
    "RestartCount",
    "ExitCode",
    "Health",
    "StartedAt",
    "PullStartedAt",
    "cpu_stats",
    "memory_stats",
    "usage",
    "stats",
    "cache",
    "file",
    "networks",
    "eth1",
    "rx_bytes",
    "blkio_stats",
    "io_service_bytes_recursive",
    "io_serviced_recursive",
    "op",
    "value",
    "anon",
    "total_rss",
    "max_usage",
    "failcnt",
    "pids_stats",
    "current",
    "limit",
    "Networks",
    "NetworkMode",
    "ClockDrift",
    "ClockErrorBound",
    "ReferenceTimestamp",
    "ClockSynchronizationStatus",
    "ServiceName",
    "Group",
    "VPCID",
    "AvailabilityZoneID",
    "TaskARN",
    "Type",
    "Labels",
    "status",
    "statusSince",
    "team",
    "com.amazonaws.ecs.task-definition-family",
];

/// Byte offsets of scalar tokens (strings, numbers, literals) in a JSON text.
fn scalars(text: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let start = i;
        match text[i] {
            b'"' => {
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push((start, i.min(text.len())));
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                while i < text.len() && !b",]} \n\t\r:".contains(&text[i]) {
                    i += 1;
                }
                out.push((start, i));
            }
            _ => i += 1,
        }
    }
    out
}

fn mutate(rng: &mut Rng, doc: &str) -> String {
    let mut text = doc.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = text.len().max(1);
        match rng.below(8) {
            0..=2 => {
                let tokens = scalars(&text);
                if let Some(&(a, b)) = tokens.get(rng.below(tokens.len())) {
                    let v = VALUES[rng.below(VALUES.len())];
                    text.splice(a..b, v.bytes());
                }
            }
            3 => {
                // A duplicate (or new) key right after an opening brace.
                let braces: Vec<usize> = text
                    .iter()
                    .enumerate()
                    .filter(|&(_, &c)| c == b'{')
                    .map(|(i, _)| i)
                    .collect();
                if let Some(&at) = braces.get(rng.below(braces.len())) {
                    let pair = format!(
                        "\"{}\": {},",
                        KEYS[rng.below(KEYS.len())],
                        VALUES[rng.below(VALUES.len())]
                    );
                    text.splice(at + 1..at + 1, pair.bytes());
                }
            }
            4 => {
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(text.len());
                text.drain(a.min(b)..b);
            }
            5 => {
                let a = rng.below(len);
                let b = (a + rng.below(256)).min(text.len());
                let span: Vec<u8> = text[a.min(b)..b].to_vec();
                let at = rng.below(text.len() + 1);
                text.splice(at..at, span);
            }
            6 => {
                let at = rng.below(text.len() + 1);
                const JUNK: &[u8] = b"{}[]\",:\\0-e.";
                let junk: Vec<u8> = (0..rng.below(8))
                    .map(|_| JUNK[rng.below(JUNK.len())])
                    .collect();
                text.splice(at..at, junk);
            }
            _ => text.truncate(rng.below(len)),
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Instance scope's two arrays from a few (task, stats) seeds, reshaped: elements in another
/// order in each array, dropped, repeated (ids in two tasks or two maps), replaced by a value of
/// another type, or the whole array replaced by one element (an object where an array belongs).
fn instance_documents(rng: &mut Rng, seeds: &[(String, String)]) -> (String, String) {
    let picked: Vec<&(String, String)> = (0..1 + rng.below(3))
        .map(|_| &seeds[rng.below(seeds.len())])
        .collect();
    let mut tasks: Vec<String> = picked.iter().map(|p| p.0.clone()).collect();
    let mut stats: Vec<String> = picked.iter().map(|p| p.1.clone()).collect();
    for list in [&mut tasks, &mut stats] {
        match rng.below(8) {
            0 => list.reverse(),
            1 if !list.is_empty() => {
                list.remove(rng.below(list.len()));
            }
            2 if !list.is_empty() => {
                let twice = list[rng.below(list.len())].clone();
                list.push(twice);
            }
            3 if !list.is_empty() => {
                let at = rng.below(list.len());
                list[at] = VALUES[rng.below(VALUES.len())].to_owned();
            }
            4 => list.insert(0, "null".to_owned()),
            _ => {}
        }
    }
    let join = |rng: &mut Rng, list: &[String]| match rng.below(12) {
        0 => list.first().cloned().unwrap_or_default(),
        _ => format!("[{}]", list.join(",")),
    };
    (join(rng, &tasks), join(rng, &stats))
}

/// Decode -> collect -> write, as a scrape does, then check the output.
fn pipeline(scope: Scope, task: &str, stats: &str, options: &Options) {
    let tasks = decode_tasks(scope, task.to_owned(), &options.labels)
        .ok()
        .map(|d| d.document);
    let stats = tasks.as_deref().and_then(|tasks| {
        decode_stats(scope, stats.to_owned(), tasks)
            .ok()
            .map(|d| d.document)
    });
    let process = ProcessStats {
        cpu_seconds: Some(0.5),
        resident_bytes: Some(1e6),
        ..ProcessStats::default()
    };
    let scrape = Scrape {
        tasks: tasks.as_deref(),
        stats: if tasks.is_some() {
            stats.as_deref()
        } else {
            None
        },
        scope,
        exporter: Some(Exporter {
            process: &process,
            answered: Answered {
                ok: 3,
                unavailable: 1,
            },
            in_flight: 1,
        }),
        build: &BUILD,
        options,
    };
    let mut out = String::new();
    let mut answer = ecs_exporter::exposition::Exposition::default();
    ecs_exporter::scrape::render(&scrape, &mut answer).expect("within the answer limit");
    std::io::Read::read_to_string(&mut answer.take(), &mut out).expect("UTF-8 text");
    let series = parse_exposition(&out);
    let up = series.iter().find(|(n, _, _)| n == "ecs_up").map(|s| s.2);
    assert_eq!(
        up,
        Some(if scrape.tasks.is_some() && scrape.stats.is_some() {
            1.0
        } else {
            0.0
        })
    );
    // In instance scope every sample of a task names it; the exporter's own do not.
    if scope == Scope::Instance {
        for (name, labels, _) in &series {
            let own = name.starts_with("process_")
                || name.starts_with("promhttp_")
                || name.starts_with("ecs_exporter_")
                || name == "ecs_up";
            let arns = labels.iter().filter(|(l, _)| l == "task_arn").count();
            let unnamed = scrape.tasks.is_some_and(|t| {
                t.iter()
                    .any(|t| t.task_arn.as_deref().is_none_or(str::is_empty))
            });
            assert!(
                own || arns == 1 || unnamed,
                "{name} {labels:?} lacks task_arn"
            );
            assert!(!own || arns == 0, "{name} {labels:?}");
        }
    }
}

/// The elements of `/tasks` and `/tasks/stats` arrays as (task, stats) seeds, in the arrays'
/// order (which need not pair them: pairing is by container id).
fn elementwise(tasks: &str, stats: &str) -> Vec<(String, String)> {
    let tasks = common::instance::elements(tasks);
    let stats = common::instance::elements(stats);
    tasks.into_iter().zip(stats).collect()
}

fn seeds() -> Vec<(String, String)> {
    let mut seeds = Vec::new();
    let fixtures = project_dir().join("fixtures");
    for entry in std::fs::read_dir(&fixtures).expect("fixtures").flatten() {
        let dir = entry.path();
        if let (Ok(t), Ok(s)) = (
            std::fs::read_to_string(dir.join("task.json")),
            std::fs::read_to_string(dir.join("stats.json")),
        ) {
            seeds.push((t, s));
        }
    }
    // Instance scope's arrays, element by element, so that instance inputs mix them.
    let ours = fixtures.join("managed-instances");
    let read = |f: &str| std::fs::read_to_string(ours.join(f)).expect("managed-instances");
    seeds.extend(elementwise(&read("tasks.json"), &read("tasks-stats.json")));
    if let Some(shared) = shared_dir_if_present() {
        let go = shared.join("conformance/ecs_exporter-v0.4.0/fixtures");
        for case in ["fargate", "ec2"] {
            let read = |f: String| std::fs::read_to_string(go.join(f)).unwrap_or_default();
            seeds.push((
                read(format!("{case}_task_metadata.json")),
                read(format!("{case}_task_stats.json")),
            ));
        }
        let payloads = shared.join("payloads");
        for (t, s) in [
            (
                "otelcontrib-ec2-bridge.task.json",
                "otelcontrib-ec2-bridge.stats.json",
            ),
            (
                "ddintegrations-fargate-v2.task.json",
                "ddintegrations-windows.stats.json",
            ),
            (
                "datadogagent-managedinstances-cgroupv2.task.json",
                "datadogagent-managedinstances-cgroupv2.stats.json",
            ),
            (
                "ecsexporter-2025-02-ec2.task.json",
                "ecsexporter-2025-02-ec2.stats.json",
            ),
            (
                "telegraf-cgroupv2-ec2-awsvpc.task.json",
                "telegraf-cgroupv2-ec2-awsvpc.stats.json",
            ),
        ] {
            let read = |f: &str| std::fs::read_to_string(payloads.join(f)).unwrap_or_default();
            seeds.push((read(t), read(s)));
        }
        let payload = |f: &str| std::fs::read_to_string(payloads.join(f)).unwrap_or_default();
        seeds.extend(elementwise(
            &payload("otelcontrib-managedinstances-daemon.tasks.json"),
            &payload("otelcontrib-managedinstances-daemon.tasks-stats.json"),
        ));
    }
    seeds
}

#[test]
fn mutated_documents_never_panic_and_always_give_valid_exposition() {
    // Under emulation a quarter as many: the same code on another architecture, at a twelfth
    // of the speed (176 s for 20,000 on CI's aarch64 run, most of that step).
    let default = if common::emulated() { 5_000 } else { 20_000 };
    let iterations: u64 = common::env_or("FUZZ_ITERATIONS", default);
    let seed: u64 = common::env_or("FUZZ_SEED", 0x05ee_dec5);
    let seeds = seeds();
    let mut rng = Rng(seed | 1);
    let started = std::time::Instant::now();
    for i in 0..iterations {
        let scope = if rng.below(4) == 0 {
            Scope::Instance
        } else {
            Scope::Task
        };
        let (task, stats) = match scope {
            Scope::Task => seeds[rng.below(seeds.len())].clone(),
            Scope::Instance => instance_documents(&mut rng, &seeds),
        };
        // Task scope: always mutated (the unmutated seeds are the golden tests'); instance scope
        // is reshaped already, and mutated three times in four.
        let kinds = if scope == Scope::Task { 3 } else { 4 };
        let (task, stats) = match rng.below(kinds) {
            0 => (mutate(&mut rng, &task), stats),
            1 => (task, mutate(&mut rng, &stats)),
            2 => (mutate(&mut rng, &task), mutate(&mut rng, &stats)),
            _ => (task, stats),
        };
        let draws: Vec<bool> = (0..64).map(|_| rng.below(4) != 0).collect();
        let next = std::cell::Cell::new(0);
        let mut options = Options::with(|_| {
            next.set(next.get() + 1);
            draws[next.get() % draws.len()]
        });
        if rng.below(4) == 0 {
            options.exclude = vec!["*e*".into()];
        }
        if rng.below(2) == 0 {
            options.labels = vec!["*".into()];
        }
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            pipeline(scope, &task, &stats, &options)
        }));
        if result.is_err() {
            let dir = project_dir().join("target/fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join(format!("{i}.task.json")), &task);
            let _ = std::fs::write(dir.join(format!("{i}.stats.json")), &stats);
            panic!(
                "input {i} (seed {seed}, {scope:?} scope) failed; it is in {}",
                dir.display()
            );
        }
    }
    eprintln!(
        "fuzz: {iterations} inputs from {} seeds, 0 failures, in {:?}",
        seeds.len(),
        started.elapsed()
    );
}
