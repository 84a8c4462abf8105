//! Hostile metadata documents of up to 4 MiB (instance scope's of up to 16 MiB) through the real
//! binary: each costs a bounded amount of memory, fails only what it must, and says why in the
//! log. The peak resident memory of each is printed; docs/design.md's tables come from
//! `cargo test --release --target x86_64-unknown-linux-musl --test hostile -- --nocapture --test-threads 1`.

mod common;

use common::{
    Behaviour, Endpoint, Exporter, emulated, parse_exposition, project_dir, value, vm_hwm,
};

/// What docs/design.md promises any document costs at the most, in resident memory.
const PROMISED_PEAK: u64 = 24 << 20;

/// Just under the 4 MiB body cap.
const BODY: usize = 4 * 1024 * 1024 - 64;

/// The same promise in instance scope, whose documents may be four times larger.
const PROMISED_INSTANCE_PEAK: u64 = 96 << 20;

/// Just under instance scope's 16 MiB body cap.
const INSTANCE_BODY: usize = 16 * 1024 * 1024 - 64;

/// A container id of the Fargate fixture's `/task`, and of the managed-instances fixture's
/// `/tasks`: stats entries under it are kept.
const FARGATE_ID: &str = "4f2c1e0a9b8d4c7e8a1f2b3c4d5e6f70-1052946210";
const MANAGED_ID: &str = "6a1e40c2b9d84f0fa3e5c7d9b1a20f3e-1203886614";

/// How one shape must come out.
struct Shape {
    name: &'static str,
    /// `/task` or `/task/stats`: the document replaced (for the other, the Fargate fixture's).
    path: &'static str,
    body: Vec<u8>,
    /// The other document, when it is not the fixture's.
    other: Option<Vec<u8>>,
    up: f64,
    /// In the warning about it, if any.
    warning: Option<&'static str>,
}

fn fargate(file: &str) -> Vec<u8> {
    std::fs::read(project_dir().join("fixtures/fargate").join(file)).expect("fixture")
}

/// `{"open": [...` up to `len` bytes with `piece` repeated inside, then `close`.
fn filled(open: &str, piece: &str, close: &str, len: usize) -> Vec<u8> {
    let count = (len - open.len() - close.len()) / piece.len();
    let mut body = open.as_bytes().to_vec();
    body.extend(piece.repeat(count).into_bytes());
    body.extend_from_slice(close.as_bytes());
    body
}

/// A JSON list or map of `len` bytes: `open`, then `item(i)` joined by commas, then `close`.
fn listed(open: &str, item: impl Fn(usize) -> String, close: &str, len: usize) -> Vec<u8> {
    let mut body = open.as_bytes().to_vec();
    let mut i = 0;
    loop {
        let next = item(i);
        if body.len() + next.len() + 1 + close.len() > len {
            break;
        }
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(next.as_bytes());
        i += 1;
    }
    body.extend_from_slice(close.as_bytes());
    body
}

/// 64 containers in bridge mode with names of 4,000 bytes (under the string limit), and whole
/// stats with an interface named with 4,000 bytes: every container family repeats the name, so
/// the answer would be over 10 MiB.
fn long_names() -> (Vec<u8>, Vec<u8>) {
    use miniserde::json::{self, Value};
    let stats = String::from_utf8(fargate("stats.json")).expect("UTF-8");
    let Ok(Value::Object(stats)) = json::from_str::<Value>(&stats) else {
        panic!("the fixture's stats are an object");
    };
    let entry = stats
        .values()
        .find(|v| matches!(v, Value::Object(_)))
        .map(json::to_string)
        .expect("a stats entry");
    let name = "x".repeat(4000);
    let entry = entry.replace("\"eth1\"", &format!("\"{name}\""));
    let containers: Vec<String> = (0..64)
        .map(|i| {
            format!(
                "{{\"Name\": \"{i}{name}\", \"DockerId\": \"id{i}\", \
                 \"Networks\": [{{\"NetworkMode\": \"bridge\"}}]}}"
            )
        })
        .collect();
    let entries: Vec<String> = (0..64).map(|i| format!("\"id{i}\": {entry}")).collect();
    let task = format!("{{\"Containers\": [{}]}}", containers.join(","));
    (
        task.into_bytes(),
        format!("{{{}}}", entries.join(",")).into_bytes(),
    )
}

fn shapes() -> Vec<Shape> {
    let levels = 1_000_000;
    let (task, stats) = long_names();
    let mut invalid_utf8 = b"{\"Unknown\": \"".to_vec();
    invalid_utf8.resize(BODY - 2, 0xff);
    invalid_utf8.extend_from_slice(b"\"}");
    vec![
        Shape {
            name: "64 containers named with 4,000 bytes each, with stats",
            path: "/task",
            body: task,
            other: Some(stats),
            up: 0.0,
            warning: Some("the answer would be larger than 8 MiB"),
        },
        Shape {
            name: "nesting, 4 million levels, never closed",
            path: "/task",
            body: filled("{\"deep\": ", "[", "", BODY),
            other: None,
            up: 0.0,
            warning: Some("nests deeper than 10000 levels"),
        },
        Shape {
            name: "nesting, 1 million levels, balanced, in /task/stats",
            path: "/task/stats",
            body: format!("{{\"deep\": {}{}}}", "[".repeat(levels), "]".repeat(levels))
                .into_bytes(),
            other: None,
            up: 0.0,
            warning: Some("nests deeper than 10000 levels"),
        },
        Shape {
            name: "one 4 MiB string where the cluster name belongs",
            path: "/task",
            body: filled("{\"Cluster\": \"", "a", "\"}", BODY),
            other: None,
            up: 1.0,
            warning: None,
        },
        Shape {
            name: "one 4 MiB string of escapes, unknown key",
            path: "/task",
            body: filled("{\"Unknown\": \"", "\\n", "\"}", BODY),
            other: None,
            up: 1.0,
            warning: None,
        },
        Shape {
            name: "one 4 MiB string of bytes that are not UTF-8",
            path: "/task",
            body: invalid_utf8,
            other: None,
            up: 1.0,
            warning: None,
        },
        Shape {
            name: "one 4 MiB string of lone surrogate escapes",
            path: "/task",
            body: filled("{\"Unknown\": \"", "\\ud800", "\"}", BODY),
            other: None,
            up: 1.0,
            warning: None,
        },
        Shape {
            name: "keys nobody reads, each nesting 9,000 levels (within Go's limit)",
            path: "/task",
            body: listed(
                "{",
                |i| format!("\"k{i:x}\":{}1{}", "[".repeat(9_000), "]".repeat(9_000)),
                "}",
                BODY,
            ),
            other: None,
            up: 1.0,
            warning: None,
        },
        Shape {
            name: "a million keys nobody reads",
            path: "/task",
            body: listed("{", |i| format!("\"k{i:x}\":1"), "}", BODY),
            other: None,
            up: 1.0,
            warning: None,
        },
        Shape {
            // Only the stats of the containers /task lists are kept: the rest cost nothing.
            name: "300,000 stats entries of containers the task does not list",
            path: "/task/stats",
            body: listed("{", |i| format!("\"{i:x}\":{{\"read\":0}}"), "}", BODY),
            other: None,
            up: 1.0,
            warning: None,
        },
        Shape {
            name: "300,000 stats entries of one container the task lists",
            path: "/task/stats",
            body: listed(
                "{",
                |_| format!("\"{FARGATE_ID}\":{{\"read\":0}}"),
                "}",
                BODY,
            ),
            other: None,
            up: 0.0,
            warning: Some("would take more than 4096 KiB once decoded"),
        },
        Shape {
            name: "a million tiny containers",
            path: "/task",
            body: listed("{\"Containers\": [", |_| "{}".into(), "]}", BODY),
            other: None,
            up: 1.0,
            warning: Some("left_out="),
        },
        Shape {
            name: "200,000 interfaces of one container",
            path: "/task/stats",
            body: listed(
                &format!("{{\"{FARGATE_ID}\": {{\"read\": 0, \"networks\": {{"),
                |i| format!("\"e{i:x}\":{{}}"),
                "}}}",
                BODY,
            ),
            other: None,
            up: 1.0,
            warning: Some("left_out="),
        },
    ]
}

/// Where a shape is served: the two documents' paths, what they hold unless the shape replaces
/// them, and the flags.
struct Scope {
    paths: [&'static str; 2],
    documents: [Vec<u8>; 2],
    flags: &'static [&'static str],
}

/// Serves `shape`, checks its `ecs_up` and warning, and returns the samples and the peak resident
/// memory (none under emulation, where it means nothing).
fn serve(shape: Shape, scope: &Scope, limit: usize) -> (Vec<common::Series>, Option<u64>) {
    let what = shape.name;
    assert!(
        shape.body.len() <= limit,
        "{what}: {} bytes",
        shape.body.len()
    );
    let endpoint = Endpoint::start();
    for (path, document) in scope.paths.iter().zip(&scope.documents) {
        endpoint.set(path, Behaviour::Json(document.clone().into()));
    }
    endpoint.set(shape.path, Behaviour::Json(shape.body.into()));
    if let Some(other) = shape.other {
        let path = scope
            .paths
            .iter()
            .find(|p| **p != shape.path)
            .expect("two paths");
        endpoint.set(path, Behaviour::Json(other.into()));
    }
    let mut args = vec![
        "--ecs.metadata-uri",
        &endpoint.base,
        "--web.disable-exporter-metrics",
    ];
    args.extend(scope.flags);
    let e = Exporter::start(&args);
    let series = parse_exposition(&e.metrics());
    let log = e.log();
    assert_eq!(
        value(&series, "ecs_up", &[]),
        Some(shape.up),
        "{what}: {log}"
    );
    match shape.warning {
        Some(says) => assert!(
            log.lines()
                .any(|l| l.contains("level=WARN") && l.contains(says)),
            "{what}: no warning saying {says:?} in:\n{log}"
        ),
        None => assert!(!log.contains("level=WARN"), "{what}: {log}"),
    }
    let peak = (!emulated()).then(|| vm_hwm(e.pid()).expect("VmHWM"));
    (series, peak)
}

#[test]
fn every_hostile_shape_costs_a_bounded_amount_and_fails_only_what_it_must() {
    let scope = Scope {
        paths: ["/task", "/task/stats"],
        documents: [fargate("task.json"), fargate("stats.json")],
        flags: &[],
    };
    for shape in shapes() {
        let what = shape.name;
        let whole_task = shape.path == "/task/stats" && shape.other.is_none();
        let (series, peak) = serve(shape, &scope, 4 << 20);
        // The other document is served whole: the task's families when /task/stats was hostile.
        if whole_task {
            assert_eq!(
                value(&series, "ecs_task_cpu_limit_vcpus", &[]),
                Some(0.5),
                "{what}"
            );
        }
        if let Some(peak) = peak {
            println!("hostile: {what}: VmHWM {} KiB", peak >> 10);
            assert!(
                peak < PROMISED_PEAK,
                "{what}: peak resident memory {peak} bytes"
            );
        }
    }
}

#[test]
fn a_scrape_after_a_hostile_document_is_whole_again() {
    let endpoint = Endpoint::fixture("fargate");
    endpoint.set(
        "/task",
        Behaviour::Json(filled("{\"deep\": ", "[", "", BODY).into()),
    );
    let e = Exporter::start(&[
        "--ecs.metadata-uri",
        &endpoint.base,
        "--web.disable-exporter-metrics",
    ]);
    assert_eq!(
        value(&parse_exposition(&e.metrics()), "ecs_up", &[]),
        Some(0.0)
    );
    endpoint.set("/task", Behaviour::json(fargate("task.json")));
    let want = std::fs::read_to_string(project_dir().join("fixtures/fargate/metrics.prom"))
        .expect("golden");
    assert_eq!(common::mask_build_info(&e.metrics()), want);
}

#[test]
fn unknown_values_nested_within_the_limit_are_skipped() {
    // 60 levels under an unknown key, in both documents: nothing else changes.
    let deep = format!("{}1{}", "{\"a\": [".repeat(30), "]}".repeat(30));
    let task = String::from_utf8(fargate("task.json")).expect("UTF-8");
    let task = task.replacen('{', &format!("{{\"Unknown\": {deep},"), 1);
    let stats = String::from_utf8(fargate("stats.json")).expect("UTF-8");
    let stats = stats.replacen("\"read\":", &format!("\"x\": {deep}, \"read\":"), 1);
    let endpoint = Endpoint::start();
    endpoint.set("/task", Behaviour::json(task));
    endpoint.set("/task/stats", Behaviour::json(stats));
    let e = Exporter::start(&[
        "--ecs.metadata-uri",
        &endpoint.base,
        "--web.disable-exporter-metrics",
    ]);
    let want = std::fs::read_to_string(project_dir().join("fixtures/fargate/metrics.prom"))
        .expect("golden");
    assert_eq!(common::mask_build_info(&e.metrics()), want);
}

fn managed_instances(file: &str) -> Vec<u8> {
    std::fs::read(project_dir().join("fixtures/managed-instances").join(file)).expect("fixture")
}

/// The task scope shapes' counterparts at instance scope's size, and the shapes only an array
/// of tasks allows: every task as full as a task may be.
fn instance_shapes() -> Vec<Shape> {
    // 256 tasks of `containers` containers in bridge mode, each container with stats of 4
    // interfaces: what multiplies the samples most, as far as the caps allow.
    let full = |containers: usize| {
        let counters = "\"rx_bytes\":1,\"rx_packets\":2,\"rx_errors\":3,\"rx_dropped\":4,\
                        \"tx_bytes\":5,\"tx_packets\":6,\"tx_errors\":7,\"tx_dropped\":8";
        let interfaces: Vec<String> = (0..4).map(|i| format!("\"e{i}\":{{{counters}}}")).collect();
        let entry = format!("{{\"read\":0,\"networks\":{{{}}}}}", interfaces.join(","));
        let (mut tasks, mut maps) = (Vec::new(), Vec::new());
        for t in 0..256 {
            let containers: Vec<String> = (0..containers)
                .map(|c| {
                    format!(
                        "{{\"Name\":\"c{c}\",\"DockerId\":\"{t}-{c}\",\
                         \"Networks\":[{{\"NetworkMode\":\"bridge\"}}]}}"
                    )
                })
                .collect();
            tasks.push(format!(
                "{{\"TaskARN\":\"arn:aws:ecs:eu-west-1:1:task/c/{t:032x}\",\"Containers\":[{}]}}",
                containers.join(",")
            ));
            let entries: Vec<String> = (0..containers.len())
                .map(|c| format!("\"{t}-{c}\":{entry}"))
                .collect();
            maps.push(format!("{{{}}}", entries.join(",")));
        }
        (
            format!("[{}]", tasks.join(",")).into_bytes(),
            format!("[{}]", maps.join(",")).into_bytes(),
        )
    };
    let (full_tasks, full_stats) = full(64);
    let (half_tasks, half_stats) = full(16);
    vec![
        Shape {
            name: "256 tasks of 16 containers in bridge mode, 4 interfaces each",
            path: "/tasks",
            body: half_tasks,
            other: Some(half_stats),
            up: 1.0,
            warning: None,
        },
        Shape {
            name: "256 tasks of 64 containers in bridge mode, 4 interfaces each",
            path: "/tasks",
            body: full_tasks,
            other: Some(full_stats),
            up: 0.0,
            warning: Some("the answer would be larger than 32 MiB"),
        },
        Shape {
            name: "nesting, 16 million levels, never closed",
            path: "/tasks",
            body: filled("[{\"deep\": ", "[", "", INSTANCE_BODY),
            other: None,
            up: 0.0,
            warning: Some("nests deeper than 10000 levels"),
        },
        Shape {
            // Kept whole, the string and the task it is in pass the decoded budget by the
            // task's own size: left out with the warning rather than cut to a wrong label.
            name: "one 16 MiB string where a cluster name belongs",
            path: "/tasks",
            body: filled("[{\"Cluster\": \"", "a", "\"}]", INSTANCE_BODY),
            other: None,
            up: 0.0,
            warning: Some("once decoded"),
        },
        Shape {
            name: "five million tiny tasks",
            path: "/tasks",
            body: listed("[", |_| "{}".into(), "]", INSTANCE_BODY),
            other: None,
            up: 1.0,
            warning: Some("left_out="),
        },
        Shape {
            // A map that holds none of the kept containers' stats is not kept.
            name: "five million tiny stats maps",
            path: "/tasks/stats",
            body: listed("[", |_| "{}".into(), "]", INSTANCE_BODY),
            other: None,
            up: 1.0,
            warning: None,
        },
        Shape {
            name: "a million stats entries of containers no task lists",
            path: "/tasks/stats",
            body: listed(
                "[{",
                |i| format!("\"{i:x}\":{{\"read\":0}}"),
                "}]",
                INSTANCE_BODY,
            ),
            other: None,
            up: 1.0,
            warning: None,
        },
        Shape {
            name: "a million stats entries of one container a task lists",
            path: "/tasks/stats",
            body: listed(
                "[{",
                |_| format!("\"{MANAGED_ID}\":{{\"read\":0}}"),
                "}]",
                INSTANCE_BODY,
            ),
            other: None,
            up: 0.0,
            warning: Some("would take more than 16384 KiB once decoded"),
        },
        Shape {
            name: "3,000 containers named with 4,000 bytes each",
            path: "/tasks",
            body: listed(
                "[{\"Containers\": [",
                |i| format!("{{\"Name\": \"{i}{}\"}}", "x".repeat(4000)),
                "]}]",
                INSTANCE_BODY,
            ),
            other: None,
            up: 1.0,
            warning: Some("left_out="),
        },
    ]
}

#[test]
fn instance_scope_bounds_every_hostile_shape_too() {
    // Under emulation a debug build takes minutes over these 16 MiB documents (the first alone
    // 30 s), past the client's deadlines, and a peak means nothing there; the code is the same
    // as the native run's, which checks it.
    if emulated() {
        eprintln!("instance scope's hostile shapes: not run under emulation");
        return;
    }
    let scope = Scope {
        paths: ["/tasks", "/tasks/stats"],
        documents: [
            managed_instances("tasks.json"),
            managed_instances("tasks-stats.json"),
        ],
        flags: &["--ecs.scope=instance"],
    };
    for shape in instance_shapes() {
        let what = shape.name;
        let (series, peak) = serve(shape, &scope, 16 << 20);
        if let Some(peak) = peak {
            println!(
                "hostile, instance scope: {what}: {} samples, VmHWM {} KiB",
                series.len(),
                peak >> 10
            );
            assert!(
                peak < PROMISED_INSTANCE_PEAK,
                "{what}: peak resident memory {peak} bytes"
            );
        }
    }
}
