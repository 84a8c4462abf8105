//! The monitoring mixin of `examples/mixin/` (alerts, recording rules, dashboard, rendered from
//! jsonnet by `.ci/mixin.sh`):
//!
//! - promtool checks the rendered rules and runs their unit tests (`tests.yaml`: every alert
//!   silent before its `for`, then firing for the task where its condition holds and not for
//!   the one beside it, in task scope and in instance scope; the recording rules' values);
//! - every alert has a severity, a summary, a description, a runbook link to its own section
//!   of `docs/runbook.md`, and unit tests in both scopes;
//! - end to end, a real Prometheus with the rendered rules loaded scrapes exporters serving
//!   healthy fixtures, `fixtures/alerting` (a container at 95% of its memory limit, one
//!   unhealthy, one exited 1, an unsynchronized clock, ephemeral storage nearly full; served
//!   with counters that move: a container over its CPU reservation and the task's limit and
//!   hitting its memory limit, one restarting), an exporter whose endpoint fails and a target that is down: each alert
//!   is pending for exactly the task (or target) that should raise it, the dashboard's queries
//!   run and read the records, and the records carry the task's identity. The same in instance scope, where `fixtures/alerting-instance` holds a healthy
//!   task and the troubled one on one instance, with containers of the same names.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::prometheus::{Prometheus, field, sample_value, text};
use common::{Behaviour, Endpoint, Exporter, TempDir, fixture, project_dir};
use miniserde::json::Value;

fn mixin_file(name: &str) -> String {
    let path = project_dir().join("examples/mixin").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The rules of the rendered alerts file, each as its lines (jsonnet writes one `- alert:`
/// line per rule and its fields indented below it).
fn alert_rules() -> Vec<(String, String)> {
    let text = mixin_file("prometheus_alerts.yaml");
    let mut rules: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.trim_start().strip_prefix("- alert: ") {
            rules.push((name.trim_matches('"').to_owned(), String::new()));
        } else if let Some((_, body)) = rules.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    rules
}

#[test]
#[cfg_attr(
    no_promtool,
    ignore = "promtool is not installed (Debian package prometheus)"
)]
fn promtool_checks_the_rules_and_passes_their_unit_tests() {
    let dir = project_dir().join("examples/mixin");
    let check = Command::new("promtool")
        .args([
            "check",
            "rules",
            "prometheus_alerts.yaml",
            "prometheus_rules.yaml",
        ])
        .current_dir(&dir)
        .output()
        .expect("promtool runs");
    let said = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "promtool check rules: {said}");
    assert!(said.contains("SUCCESS: 13 rules found"), "{said}");
    assert!(said.contains("SUCCESS: 12 rules found"), "{said}");
    let test = Command::new("promtool")
        .args(["test", "rules", "tests.yaml"])
        .current_dir(&dir)
        .output()
        .expect("promtool runs");
    let said =
        String::from_utf8_lossy(&test.stdout).into_owned() + &String::from_utf8_lossy(&test.stderr);
    assert!(test.status.success(), "promtool test rules: {said}");
    assert!(said.contains("SUCCESS"), "{said}");
}

#[test]
fn every_alert_is_described_tested_in_both_scopes_and_has_a_runbook_section() {
    let rules = alert_rules();
    assert_eq!(
        rules.len(),
        13,
        "{:?}",
        rules.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    let tests = mixin_file("tests.yaml");
    let runbook =
        std::fs::read_to_string(project_dir().join("docs/runbook.md")).expect("docs/runbook.md");
    for (name, body) in &rules {
        for field in ["severity: ", "summary: ", "description: ", "for: "] {
            assert!(body.contains(field), "{name} has no {field}");
        }
        let anchor = name.to_ascii_lowercase();
        assert!(
            body.contains(&format!("runbook_url: \"https://github.com/ecs-exporter-rs/ecs_exporter/blob/main/docs/runbook.md#{anchor}\"")),
            "{name}: runbook_url"
        );
        assert!(
            runbook.contains(&format!("\n## {name}\n")),
            "docs/runbook.md has no section {name}"
        );
        // Two checks (before and after `for`) in each of the two scopes.
        let checks = tests.matches(&format!("alertname: \"{name}\"\n")).count();
        assert_eq!(checks, 4, "{name}: {checks} checks in tests.yaml");
    }
    // Each scope's tests expect alerts of both scopes' labels: a task scope target
    // (ip:port) and an instance scope one (an instance id with task_arn).
    assert!(tests.contains("job: \"ecs-task\""));
    assert!(tests.contains("job: \"ecs-exporter-instances\""));
}

/// The troubled task of `fixtures/alerting` (and of `fixtures/alerting-instance`).
const TROUBLED: &str = "7b3d2f1e0c9a4b8d9e2f3a4b5c6d7e81";

/// A loopback address where nothing listens, held for the test: a target that is down.
fn dead_target() -> (common::raw::Refusing, String) {
    let refusing = common::raw::Refusing::new();
    let address = refusing.address.clone();
    (refusing, address)
}

fn address(exporter: &Exporter) -> String {
    exporter.base.trim_start_matches("http://").to_owned()
}

/// Prometheus scraping `targets` as `job` every 2 s (a 2 s timeout leaves room for an exporter
/// under emulation on a loaded machine: one failed scrape would be an alert), with the
/// rendered alerts and rules evaluated every second.
fn prometheus_with_the_mixin(job: &str, targets: &[String], tmp: &TempDir) -> Prometheus {
    let dir = project_dir().join("examples/mixin");
    let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\n  evaluation_interval: 1s\n\
         rule_files:\n  - '{}'\n  - '{}'\n\
         scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
        dir.join("prometheus_alerts.yaml").display(),
        dir.join("prometheus_rules.yaml").display(),
        targets.join(", ")
    );
    Prometheus::start(&config, tmp)
}

/// The active alerts as `NAME instance=... task=... container=...` lines (sorted), each
/// checked to be pending (every alert has a `for` of minutes, so none may fire yet) and to
/// name in its description the task and container its labels name.
fn active_alerts(prometheus: &Prometheus) -> Vec<String> {
    let data = prometheus.api("/api/v1/alerts").expect("alerts");
    let Some(Value::Array(alerts)) = field(&data, "alerts") else {
        panic!("alerts");
    };
    let mut seen: Vec<String> = alerts
        .iter()
        .map(|alert| {
            let labels = field(alert, "labels").expect("labels");
            let label = |name: &str| text(field(labels, name)).to_owned();
            let (name, task, container) = (
                label("alertname"),
                label("task_id"),
                label("container_name"),
            );
            assert_eq!(text(field(alert, "state")), "pending", "{name}: {alert:?}");
            let description = text(field(
                field(alert, "annotations").expect("annotations"),
                "description",
            ));
            assert!(description.contains(&task), "{name}: {description}");
            if !container.is_empty() {
                assert!(
                    description.contains(&format!("Container {container} of task {task}")),
                    "{name}: {description}"
                );
            }
            format!(
                "{name} instance={} task={task} arn={} container={container}",
                label("instance"),
                label("task_arn")
            )
        })
        .collect();
    seen.sort();
    seen
}

/// Waits until the active alerts are `want`, then a few evaluations more in case another one
/// comes late.
fn assert_alerts(prometheus: &Prometheus, mut want: Vec<String>) {
    want.sort();
    let deadline = Instant::now() + common::bound(Duration::from_secs(60));
    loop {
        let seen = active_alerts(prometheus);
        if seen == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "in time, the active alerts are\n{seen:#?}\nnot\n{want:#?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Not a wait for an event: what is asserted is that no other alert comes, over two of the
    // rules' 2 s evaluations.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(active_alerts(prometheus), want, "an alert came late");
}

/// An alert of the troubled task, as [`active_alerts`] writes it.
fn of_troubled(name: &str, at: &str, container: &str) -> String {
    format!(
        "{name} instance={at} task={TROUBLED} arn=arn:aws:ecs:eu-west-1:123456789012:task/shop-prod/{TROUBLED} container={container}"
    )
}

/// The alerts of both scopes: the target whose endpoint fails, the target that is down, and
/// the troubled task's container and clock alerts (the exporter serving it is at `at`).
fn expected(at: &str, unreadable: &str, dead: &str) -> Vec<String> {
    vec![
        format!("EcsMetadataUnreadable instance={unreadable} task= arn= container="),
        format!("EcsExporterDown instance={dead} task= arn= container="),
        of_troubled("EcsContainerMemoryNearLimit", at, "checkout"),
        of_troubled("EcsContainerUnhealthy", at, "worker"),
        of_troubled("EcsContainerExitedNonZero", at, "db-migrate"),
        of_troubled("EcsTaskClockNotSynchronized", at, ""),
        of_troubled("EcsTaskClockErrorLarge", at, ""),
    ]
}

/// Every query of the generated dashboard, variables at "All", on a Prometheus with the rules
/// loaded: it runs (no many-to-many join in either scope) and shows series, but for the
/// panels of what the fixtures of `empty_in` lack; a panel that reads a record shows the
/// record's series, each once (the fallback's series carry the same labels, so `or` adds none).
fn dashboard_queries(prometheus: &Prometheus, empty_in: &[&str]) {
    let text_of = std::fs::read_to_string(project_dir().join("examples/grafana-dashboard.json"))
        .expect("the dashboard");
    let dashboard: Value = miniserde::json::from_str(&text_of).expect("JSON");
    let all = |expr: &str| {
        expr.replace("$cluster", ".*")
            .replace("$family", ".*")
            .replace("$task", ".*")
            .replace("$__rate_interval", "15s")
    };
    let Some(Value::Array(panels)) = field(&dashboard, "panels") else {
        panic!("panels");
    };
    let mut records = 0;
    for panel in panels {
        let title = text(field(panel, "title"));
        let Some(Value::Array(targets)) = field(panel, "targets") else {
            panic!("{title}: targets");
        };
        for t in targets {
            let expr = all(text(field(t, "expr")));
            let result = prometheus
                .query(&expr)
                .unwrap_or_else(|e| panic!("panel {title:?}: {expr}: {e}"));
            if !empty_in.contains(&title) {
                assert!(!result.is_empty(), "panel {title:?} shows nothing: {expr}");
            }
            // `NAME{filter} or (...)`: the record alone shows the same series.
            let Some(at) = expr.find("{cluster=~") else {
                continue;
            };
            let name: String = expr[..at]
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect::<Vec<char>>()
                .into_iter()
                .rev()
                .collect();
            if !name.contains(':') {
                continue;
            }
            let recorded = prometheus
                .query(&all(&format!(
                    "{name}{{cluster=~\"$cluster\", family=~\"$family\", task_arn=~\"$task\"}}"
                )))
                .expect("the record");
            assert!(!recorded.is_empty(), "panel {title:?}: no {name}");
            assert_eq!(recorded.len(), result.len(), "panel {title:?}: {expr}");
            records += 1;
        }
    }
    assert!(records >= 6, "{records} panels read records");
}

/// The troubled task's documents served by an endpoint whose counters move, as a live task's
/// do: its worker restarts every second, and its checkout container hits its memory limit
/// (failcnt) 10 times a second and uses 1 vCPU, over the task's limit (0.5) and its own
/// reservation (0.75). Fixture files are static, and the restart, memory pressure and CPU
/// alerts need counters that move. A 5-minute rate is the increase divided by 5 minutes however
/// young the series is, so the CPU counter also gains 300 s once Prometheus has its first
/// sample, as if the container had used 1 vCPU for the 5 minutes before: from the third scrape
/// on the rate is 1 vCPU or more (more while Prometheus extrapolates a young series). `paths`
/// are the task and stats paths (`/task` or `/tasks`); the troubled task's CPU is the last of
/// the stats file.
struct Ticking {
    endpoint: Arc<Endpoint>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticking {
    fn start(case: &str, files: [&str; 2], paths: [&'static str; 2]) -> Ticking {
        let dir = project_dir().join("fixtures").join(case);
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("fixture");
        let (task, stats) = (read(files[0]), read(files[1]));
        let cpu = "\"total_usage\": 184613001558";
        let at = stats.rfind(cpu).expect("the checkout container's CPU");
        let endpoint = Arc::new(Endpoint::start());
        let stop = Arc::new(AtomicBool::new(false));
        let (serving, stopping) = (Arc::clone(&endpoint), Arc::clone(&stop));
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            let mut scraped: Option<Instant> = None;
            while !stopping.load(Ordering::SeqCst) {
                let t = started.elapsed().as_secs_f64();
                // Past the first scrape's two requests: the jump is not in its sample, even
                // when an emulated exporter's two requests are far apart.
                if scraped.is_none() && serving.hits() >= 3 {
                    scraped = Some(Instant::now());
                }
                let cpu_seconds = scraped.map_or(0.0, |at| 300.0 + at.elapsed().as_secs_f64());
                let task = task.replacen(
                    "\"Name\": \"worker\",",
                    &format!("\"Name\": \"worker\", \"RestartCount\": {},", t as u64),
                    1,
                );
                let stats = format!(
                    "{}\"total_usage\": {}{}",
                    &stats[..at],
                    184_613_001_558 + (cpu_seconds * 1e9) as u64,
                    &stats[at + cpu.len()..]
                )
                .replacen(
                    "\"limit\": 536870912",
                    &format!("\"limit\": 536870912, \"failcnt\": {}", (t * 10.0) as u64),
                    1,
                );
                serving.set(paths[0], Behaviour::json(task));
                serving.set(paths[1], Behaviour::json(stats));
                // Pacing: the counters move on ten times a second, as a task's would.
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Ticking {
            endpoint,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticking {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The alerts the moving counters raise for the troubled task.
fn moving(at: &str) -> [String; 4] {
    [
        of_troubled("EcsTaskCpuNearLimit", at, ""),
        of_troubled("EcsContainerCpuNearReservation", at, "checkout"),
        of_troubled("EcsContainerMemoryPressure", at, "checkout"),
        of_troubled("EcsContainerRestarting", at, "worker"),
    ]
}

/// The value of an instant query with exactly one result.
fn one_value(prometheus: &Prometheus, promql: &str) -> f64 {
    let result = prometheus
        .query(promql)
        .unwrap_or_else(|e| panic!("{promql}: {e}"));
    assert_eq!(result.len(), 1, "{promql}: {result:?}");
    sample_value(&result[0]).expect("a value")
}

#[test]
#[cfg_attr(
    no_prometheus,
    ignore = "prometheus is not installed (Debian package prometheus)"
)]
fn task_scope_each_alert_is_pending_for_exactly_the_troubled_task() {
    let healthy = [
        Exporter::start(&["--ecs.metadata-uri", &fixture("fargate")]),
        Exporter::start(&["--ecs.metadata-uri", &fixture("ec2-cgroupv2")]),
    ];
    let ticking = Ticking::start(
        "alerting",
        ["task.json", "stats.json"],
        ["/task", "/task/stats"],
    );
    let troubled = Exporter::start(&["--ecs.metadata-uri", &ticking.endpoint.base]);
    // An endpoint that answers 404 to everything: the exporter answers with ecs_up 0.
    let endpoint = Endpoint::start();
    let unreadable = Exporter::start(&["--ecs.metadata-uri", &endpoint.base]);
    let (_refusing, dead) = dead_target();
    let mut targets: Vec<String> = healthy.iter().map(address).collect();
    targets.extend([address(&troubled), address(&unreadable), dead.clone()]);
    let tmp = TempDir::new("mixin-task");
    let prometheus = prometheus_with_the_mixin("ecs-task", &targets, &tmp);

    let mut want = expected(&address(&troubled), &address(&unreadable), &dead);
    want.extend(moving(&address(&troubled)));
    want.push(of_troubled(
        "EcsTaskEphemeralStorageNearFull",
        &address(&troubled),
        "",
    ));
    assert_alerts(&prometheus, want);
    dashboard_queries(&prometheus, &[]);
    // The recording rules, with the task's identity attached.
    let ratio = one_value(
        &prometheus,
        &format!(
            "task_container:ecs_container_memory_working_set_bytes:ratio_limit{{task_id=\"{TROUBLED}\", container_name=\"checkout\", family=\"checkout\"}}"
        ),
    );
    assert!((ratio - 0.95).abs() < 1e-9, "{ratio}");
    let service = one_value(
        &prometheus,
        "service:ecs_container_memory_working_set_bytes:sum{service=\"orders-api\"}",
    );
    let tasks = one_value(
        &prometheus,
        "sum(ecs_container_memory_working_set_bytes{job=\"ecs-task\"} * on (instance) group_left ecs_task_identity_info{group=\"service:orders-api\"})",
    );
    assert_eq!(service, tasks);
}

#[test]
#[cfg_attr(
    no_prometheus,
    ignore = "prometheus is not installed (Debian package prometheus)"
)]
fn instance_scope_each_alert_is_pending_for_exactly_the_troubled_task() {
    let instance = |case: &str| {
        Exporter::start(&["--ecs.metadata-uri", &fixture(case), "--ecs.scope=instance"])
    };
    // Three healthy tasks; then, on one instance, a healthy task and the troubled one, with
    // containers of the same names: only task_arn tells them apart.
    let healthy = instance("managed-instances");
    let ticking = Ticking::start(
        "alerting-instance",
        ["tasks.json", "tasks-stats.json"],
        ["/tasks", "/tasks/stats"],
    );
    let troubled = Exporter::start(&[
        "--ecs.metadata-uri",
        &ticking.endpoint.base,
        "--ecs.scope=instance",
    ]);
    let endpoint = Endpoint::start();
    let unreadable =
        Exporter::start(&["--ecs.metadata-uri", &endpoint.base, "--ecs.scope=instance"]);
    let (_refusing, dead) = dead_target();
    let targets = [
        address(&healthy),
        address(&troubled),
        address(&unreadable),
        dead.clone(),
    ];
    let tmp = TempDir::new("mixin-instance");
    let prometheus = prometheus_with_the_mixin("ecs-exporter-instances", &targets, &tmp);

    // Ephemeral storage is Fargate's: Managed Instances do not report it.
    let mut want = expected(&address(&troubled), &address(&unreadable), &dead);
    want.extend(moving(&address(&troubled)));
    assert_alerts(&prometheus, want);
    // Managed Instances run awsvpc tasks: no container has interfaces of its own.
    dashboard_queries(
        &prometheus,
        &["Network by container, bridge mode (receive +, transmit -)"],
    );
    // Every task with a working set has its record, named by its ARN and with its identity.
    let records = prometheus
        .query("task:ecs_container_memory_working_set_bytes:sum")
        .expect("records");
    let with_stats = prometheus
        .query("count by (task_arn) (ecs_container_memory_working_set_bytes)")
        .expect("tasks");
    assert_eq!(records.len(), with_stats.len(), "{records:?}");
    assert!(records.len() >= 4, "{records:?}");
    for record in &records {
        let labels = field(record, "metric").expect("labels");
        let arn = text(field(labels, "task_arn"));
        assert!(arn.ends_with(text(field(labels, "task_id"))), "{record:?}");
        assert!(!text(field(labels, "family")).is_empty(), "{record:?}");
    }
    let ratio = one_value(
        &prometheus,
        &format!(
            "task_container:ecs_container_memory_working_set_bytes:ratio_limit{{task_id=\"{TROUBLED}\", container_name=\"checkout\"}}"
        ),
    );
    assert!((ratio - 0.95).abs() < 1e-9, "{ratio}");
}
