//! Hostile metadata documents of up to 4 MiB through the real binary: each costs a bounded
//! amount of memory, fails only what it must, and says why in the log. The peak resident memory
//! of each is printed; docs/design.md's table comes from
//! `cargo test --release --target x86_64-unknown-linux-musl --test hostile -- --nocapture --test-threads 1`.

mod common;

use common::{
    Behaviour, Endpoint, Exporter, emulated, parse_exposition, project_dir, value, vm_hwm,
};

/// What docs/design.md promises any document costs at the most, in resident memory.
const PROMISED_PEAK: u64 = 24 << 20;

/// Just under the 4 MiB body cap.
const BODY: usize = 4 * 1024 * 1024 - 64;

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
            warning: Some("nests deeper than 64 levels"),
        },
        Shape {
            name: "nesting, 1 million levels, balanced, in /task/stats",
            path: "/task/stats",
            body: format!("{{\"deep\": {}{}}}", "[".repeat(levels), "]".repeat(levels))
                .into_bytes(),
            other: None,
            up: 0.0,
            warning: Some("nests deeper than 64 levels"),
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
            name: "a million keys nobody reads",
            path: "/task",
            body: listed("{", |i| format!("\"k{i:x}\":1"), "}", BODY),
            other: None,
            up: 1.0,
            warning: None,
        },
        Shape {
            name: "300,000 stats entries",
            path: "/task/stats",
            body: listed("{", |i| format!("\"{i:x}\":{{\"read\":0}}"), "}", BODY),
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
                "{\"x\": {\"read\": 0, \"networks\": {",
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

#[test]
fn every_hostile_shape_costs_a_bounded_amount_and_fails_only_what_it_must() {
    for shape in shapes() {
        assert!(
            shape.body.len() <= 4 << 20,
            "{}: {} bytes",
            shape.name,
            shape.body.len()
        );
        let endpoint = Endpoint::fixture("fargate");
        endpoint.set(shape.path, Behaviour::Json(shape.body.into()));
        let replaced_both = shape.other.is_some();
        if let Some(other) = shape.other {
            let path = if shape.path == "/task" {
                "/task/stats"
            } else {
                "/task"
            };
            endpoint.set(path, Behaviour::Json(other.into()));
        }
        let e = Exporter::start(&[
            "--ecs.metadata-uri",
            &endpoint.base,
            "--web.disable-exporter-metrics",
        ]);
        let series = parse_exposition(&e.metrics());
        let what = shape.name;
        assert_eq!(value(&series, "ecs_up", &[]), Some(shape.up), "{what}");
        // The other document is served whole: the task's families when /task/stats was hostile.
        if shape.path == "/task/stats" && !replaced_both {
            assert_eq!(
                value(&series, "ecs_task_cpu_limit_vcpus", &[]),
                Some(0.5),
                "{what}"
            );
        }
        let log = e.log();
        match shape.warning {
            Some(says) => assert!(
                log.lines()
                    .any(|l| l.contains("level=WARN") && l.contains(says)),
                "{what}: no warning saying {says:?} in:\n{log}"
            ),
            None => assert!(!log.contains("level=WARN"), "{what}: {log}"),
        }
        if !emulated() {
            let peak = vm_hwm(e.pid()).expect("VmHWM");
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
