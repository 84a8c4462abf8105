//! A real Prometheus server (Debian's package) scrapes two exporters on loopback every second,
//! serving the Fargate and the EC2 cgroup v2 fixtures. Through Prometheus's HTTP API:
//!
//! - the targets are up with no scrape error, `ecs_task_metadata_info` carries the fixture's
//!   labels, and values equal the fixture's;
//! - the relabelling of `examples/prometheus-ecs-sd.yml`, applied to a target that carries the
//!   `__meta_ecs_*` labels ECS discovery sets (through file_sd: Debian's Prometheus predates the
//!   ECS role), keeps only tagged running tasks and makes no `exported_*` label;
//! - every query of `examples/grafana-dashboard.json`, with its variables at "All", runs without
//!   error and returns series;
//! - in a second Prometheus, an exporter in instance scope found as the managed daemon example's
//!   EC2 discovery finds it: its tasks told apart by `task_arn`, the instance-scope queries of
//!   the docs.
//!
//! Both Prometheus and `promtool debug metrics` ask for gzip: the exporters' debug log shows
//! that every answer they got was gzip.
//!
//! Bounded: it gives Prometheus 60 s, and stops everything it started.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::prometheus::{
    Prometheus, field as get, sample_value as sample, text, url_encode as encode,
};
use common::{Exporter, TempDir, project_dir};
use miniserde::json::{self, Value};

/// `data.result` of an instant query; none if Prometheus cannot answer yet.
fn query(prometheus: &Prometheus, promql: &str) -> Vec<Value> {
    prometheus.query(promql).unwrap_or_default()
}

/// `data.result` of an instant query, or what Prometheus said was wrong with it.
fn query_checked(prometheus: &Prometheus, promql: &str) -> Result<Vec<Value>, String> {
    prometheus.query(promql)
}

#[test]
#[cfg_attr(
    no_prometheus,
    ignore = "prometheus is not installed (Debian package prometheus)"
)]
fn a_real_prometheus_scrapes_the_exporter() {
    let fargate = project_dir().join("fixtures/fargate");
    let exporter = Exporter::start(&[
        "--ecs.metadata-uri",
        fargate.to_str().expect("UTF-8"),
        "--ecs.container-labels=com.amazonaws.ecs.*",
        "--log.level=debug",
    ]);
    let target = exporter.base.trim_start_matches("http://").to_owned();
    let ec2 = project_dir().join("fixtures/ec2-cgroupv2");
    let ec2_exporter = Exporter::start(&[
        "--ecs.metadata-uri",
        ec2.to_str().expect("UTF-8"),
        "--log.level=debug",
    ]);
    let ec2_target = ec2_exporter.base.trim_start_matches("http://").to_owned();

    let tmp = TempDir::new("prometheus");
    // What ECS discovery would find: the tagged running task, and one without the tag.
    let discovered = tmp.0.join("discovered.json");
    std::fs::write(
        &discovered,
        format!(
            r#"[{{"targets": ["{target}"], "labels": {{"__meta_ecs_tag_task_ecs_exporter": "true",
                "__meta_ecs_last_status": "RUNNING", "__meta_ecs_cluster": "shop-prod",
                "__meta_ecs_service": "checkout", "__meta_ecs_availability_zone": "eu-west-1b",
                "__meta_ecs_task_definition": "arn:aws:ecs:eu-west-1:123456789012:task-definition/checkout:42"}}}},
               {{"targets": ["{ec2_target}"], "labels": {{"__meta_ecs_last_status": "RUNNING",
                "__meta_ecs_cluster": "shop-prod", "__meta_ecs_service": "orders"}}}}]"#
        ),
    )
    .expect("file_sd");
    // The example's relabel_configs block, as written, under a file_sd job.
    let relabel = relabel_configs_of("prometheus-ecs-sd.yml");
    let config = tmp.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: ecs\n    static_configs:\n      - targets: ['{target}', '{ec2_target}']\n  - job_name: ecs-sd\n    file_sd_configs:\n      - files: ['{}']\n{relabel}",
            discovered.display()
        ),
    )
    .expect("config");
    let prometheus = start_prometheus(&config, &tmp, 3);

    let info = query(
        &prometheus,
        &format!("ecs_task_metadata_info{{job=\"ecs\", instance=\"{target}\"}}"),
    );
    let labels = info
        .first()
        .and_then(|r| get(r, "metric"))
        .expect("ecs_task_metadata_info");
    for (label, want) in [
        (
            "cluster",
            "arn:aws:ecs:eu-west-1:123456789012:cluster/shop-prod",
        ),
        (
            "task_arn",
            "arn:aws:ecs:eu-west-1:123456789012:task/shop-prod/4f2c1e0a9b8d4c7e8a1f2b3c4d5e6f70",
        ),
        ("family", "checkout"),
        ("revision", "42"),
        ("launch_type", "FARGATE"),
        ("availability_zone", "eu-west-1b"),
        ("known_status", "RUNNING"),
        ("desired_status", "RUNNING"),
        ("job", "ecs"),
    ] {
        assert_eq!(text(get(labels, label)), want, "label {label}");
    }
    for (promql, want) in [
        ("ecs_task_memory_limit_bytes", 1_073_741_824.0),
        ("ecs_task_cpu_limit_vcpus", 0.5),
        (
            "ecs_container_cpu_usage_seconds_total{container_name=\"checkout\"}",
            184.613001558,
        ),
        (
            "ecs_network_receive_bytes_total{interface=\"eth1\"}",
            846_219_953.0,
        ),
        ("ecs_up", 1.0),
    ] {
        let promql = promql.replace("{", &format!("{{job=\"ecs\", instance=\"{target}\", "));
        let promql = if promql.contains('{') {
            promql.replace(", }", "}")
        } else {
            format!("{promql}{{job=\"ecs\", instance=\"{target}\"}}")
        };
        let got = query(&prometheus, &promql).first().and_then(sample);
        assert_eq!(got, Some(want), "{promql}");
    }

    ecs_discovery_relabelling(&prometheus, &target);
    dashboard_queries(&prometheus);
    documented_queries(&prometheus, Scope::Task);

    let response = minreq::get(format!("{}/api/v1/targets", prometheus.url))
        .with_timeout(common::ms(5000).as_secs())
        .send()
        .expect("targets");
    let targets: Value = json::from_str(response.as_str().expect("UTF-8")).expect("JSON");
    let Some(Value::Array(active)) = get(&targets, "data").and_then(|d| get(d, "activeTargets"))
    else {
        panic!("activeTargets");
    };
    assert_eq!(
        active.len(),
        3,
        "two static targets and the one tagged task"
    );
    for target in active {
        assert_eq!(text(get(target, "health")), "up");
        assert_eq!(text(get(target, "lastError")), "", "no scrape error");
    }
    // Prometheus asks for gzip on every scrape; only Prometheus scraped these two.
    for e in [&exporter, &ec2_exporter] {
        e.wait_for_log("msg=\"metrics answered\"", common::ms(5000));
        assert_all_gzip(&e.log());
    }
}

/// Every metrics request the exporter answered (at least one) was answered with gzip: its
/// debug line for each says which encoding the answer had.
fn assert_all_gzip(log: &str) {
    let answered: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("msg=\"metrics answered\""))
        .collect();
    assert!(!answered.is_empty(), "no metrics answered in:\n{log}");
    for line in answered {
        assert!(line.ends_with(" encoding=gzip"), "not gzip: {line}");
    }
}

/// promtool fetches the metrics as Go's HTTP client does (asking for gzip, decompressing it
/// itself): what it stores is the identity answer, and `promtool check metrics` accepts it.
#[test]
#[cfg_attr(
    no_prometheus,
    ignore = "prometheus is not installed (Debian package prometheus)"
)]
fn promtool_scrapes_it_compressed() {
    let fargate = project_dir().join("fixtures/fargate");
    let exporter = Exporter::start(&[
        "--ecs.metadata-uri",
        fargate.to_str().expect("UTF-8"),
        "--web.disable-exporter-metrics",
        "--log.level=debug",
    ]);
    let tmp = TempDir::new("promtool-debug");
    let out = Command::new("promtool")
        .args(["debug", "metrics", &exporter.base])
        .current_dir(&tmp.0)
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Logged after the answer is handed over: promtool may have it first.
    exporter.wait_for_log("msg=\"metrics answered\"", common::ms(5000));
    assert_all_gzip(&exporter.log());
    let untar = Command::new("tar")
        .args(["xzf", "debug.tar.gz"])
        .current_dir(&tmp.0)
        .status()
        .expect("tar runs");
    assert!(untar.success());
    let fetched = std::fs::read_to_string(tmp.0.join("metrics.txt")).expect("metrics.txt");
    let identity = exporter.get("/metrics");
    assert_eq!(identity.header("content-encoding"), None);
    assert!(
        fetched == identity.as_str().expect("UTF-8"),
        "promtool's copy is the identity answer"
    );
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    use std::io::Write;
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(fetched.as_bytes())
        .expect("written");
    let checked = check.wait_with_output().expect("promtool ends");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
}

/// Starts a Prometheus on `config`, storing under `tmp`, and waits until `targets` targets
/// are up with a few samples each, so that rates have two points.
fn start_prometheus(config: &std::path::Path, tmp: &TempDir, targets: usize) -> Prometheus {
    let prometheus = Prometheus::start_on(config, tmp);
    common::wait_until(
        &format!("Prometheus reports {targets} targets up, with 4 samples each"),
        common::bound(Duration::from_secs(60)),
        || {
            let samples = query(
                &prometheus,
                &format!(
                    "min(count_over_time(up[1m]) * (up == 1)) and count(up == 1) == {targets}"
                ),
            );
            samples.first().and_then(sample).is_some_and(|n| n >= 4.0)
        },
    );
    prometheus
}

/// The relabelling of an example config, as written: its `relabel_configs` block.
fn relabel_configs_of(example: &str) -> String {
    let text =
        std::fs::read_to_string(project_dir().join("examples").join(example)).expect("the example");
    let at = text
        .find("    relabel_configs:")
        .unwrap_or_else(|| panic!("{example} has relabel_configs"));
    text[at..].to_owned()
}

/// Instance scope on a real Prometheus: an exporter in instance scope serving
/// `fixtures/managed-instances`, found as `examples/prometheus-managed-daemon.yml`'s EC2
/// discovery would find it (file_sd carries the labels EC2 discovery sets; the example's
/// relabelling is applied as written). Its three tasks' series are told apart by `task_arn`,
/// its target is named by the instance id, and the instance-scope queries of the docs run.
#[test]
#[cfg_attr(
    no_prometheus,
    ignore = "prometheus is not installed (Debian package prometheus)"
)]
fn a_real_prometheus_scrapes_an_instance() {
    let fixture = project_dir().join("fixtures/managed-instances");
    let exporter = Exporter::start(&[
        "--ecs.metadata-uri",
        fixture.to_str().expect("UTF-8"),
        "--ecs.scope=instance",
    ]);
    let target = exporter.base.trim_start_matches("http://").to_owned();
    let tmp = TempDir::new("prometheus-instance");
    let discovered = tmp.0.join("discovered.json");
    std::fs::write(
        &discovered,
        format!(
            r#"[{{"targets": ["{target}"], "labels": {{"__meta_ec2_instance_id": "i-0a1b2c3d4e5f60718",
                "__meta_ec2_instance_type": "m7g.xlarge", "__meta_ec2_tag_ecs_exporter": "daemon"}}}}]"#
        ),
    )
    .expect("file_sd");
    let relabel = relabel_configs_of("prometheus-managed-daemon.yml");
    let config = tmp.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: ecs-exporter-instances\n    file_sd_configs:\n      - files: ['{}']\n{relabel}",
            discovered.display()
        ),
    )
    .expect("config");
    let prometheus = start_prometheus(&config, &tmp, 1);

    let up = query(
        &prometheus,
        "up{instance=\"i-0a1b2c3d4e5f60718\", ec2_instance_type=\"m7g.xlarge\"}",
    );
    assert_eq!(
        up.first().and_then(sample),
        Some(1.0),
        "the target, named by its instance"
    );
    let tasks = query(&prometheus, "count by (instance) (ecs_task_metadata_info)");
    assert_eq!(tasks.first().and_then(sample), Some(3.0));
    // Every task-level and container-level series names its task, and only the three tasks.
    let arns = query(
        &prometheus,
        "count by (task_arn) ({__name__=~\"ecs_(task|container|network)_.+\"})",
    );
    assert_eq!(arns.len(), 3, "{arns:?}");
    assert!(
        arns.iter()
            .all(|r| text(get(get(r, "metric").expect("labels"), "task_arn"))
                .starts_with("arn:aws:ecs:")),
        "{arns:?}"
    );
    let web = query(
        &prometheus,
        "ecs_container_cpu_usage_seconds_total{container_name=\"web\"} * on (task_arn) group_left (family) ecs_task_metadata_info",
    );
    assert_eq!(web.len(), 1);
    assert_eq!(
        text(get(get(&web[0], "metric").expect("labels"), "family")),
        "web"
    );
    documented_queries(&prometheus, Scope::Instance);
}

/// The example's relabelling kept the tagged task only, set its target labels, and made no
/// label clash with the exporter's own (Prometheus renames the exporter's to `exported_*`).
fn ecs_discovery_relabelling(prometheus: &Prometheus, target: &str) {
    let kept = query(prometheus, "up{job=\"ecs-sd\"}");
    assert_eq!(kept.len(), 1, "only the tagged task is scraped");
    let labels = get(&kept[0], "metric").expect("labels");
    assert_eq!(text(get(labels, "instance")), target);
    assert_eq!(text(get(labels, "ecs_cluster")), "shop-prod");
    assert_eq!(text(get(labels, "ecs_service")), "checkout");
    let url = format!(
        "{}/api/v1/labels?match[]={}",
        prometheus.url,
        encode("{job=\"ecs-sd\"}")
    );
    let response = minreq::get(url)
        .with_timeout(common::ms(5000).as_secs())
        .send()
        .expect("labels");
    let names: Value = json::from_str(response.as_str().expect("UTF-8")).expect("JSON");
    let Some(Value::Array(names)) = get(&names, "data") else {
        panic!("label names");
    };
    let names: Vec<&str> = names.iter().map(|n| text(Some(n))).collect();
    assert!(names.contains(&"availability_zone"), "{names:?}");
    let clashes: Vec<&&str> = names
        .iter()
        .filter(|n| n.starts_with("exported_"))
        .collect();
    assert!(
        clashes.is_empty(),
        "target labels clash with the exporter's: {clashes:?}"
    );
}

/// Which documented queries a Prometheus can run: those for sidecars (one task per target), or
/// those for instance scope (blocks marked `instance`).
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Task,
    Instance,
}

/// Every query in the `promql` blocks of the README and the docs of `scope` runs on this
/// Prometheus: those of a `promql` block return series, those of a `promql alert` block (alert
/// conditions that the fixtures, rightly, do not meet) return none; `promql instance` and
/// `promql instance alert` are instance scope's. A query is a line that is neither blank nor a
/// comment, with the indented lines that follow it.
fn documented_queries(prometheus: &Prometheus, scope: Scope) {
    let mut queries: Vec<(String, bool)> = Vec::new();
    let mut files = vec![project_dir().join("README.md")];
    let docs = std::fs::read_dir(project_dir().join("docs")).expect("docs/");
    files.extend(docs.flatten().map(|e| e.path()));
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a doc");
        for block in text.split("```promql").skip(1) {
            let (info, body) = block.split_once('\n').unwrap_or((block, ""));
            let words: Vec<&str> = info.split_whitespace().collect();
            let alert = words.contains(&"alert");
            let block_scope = if words.contains(&"instance") {
                Scope::Instance
            } else {
                Scope::Task
            };
            if block_scope != scope {
                continue;
            }
            let body = body.split("```").next().unwrap_or("");
            for line in body.lines() {
                match queries.last_mut() {
                    Some((query, _)) if line.starts_with(' ') => query.push_str(line),
                    _ if line.is_empty() || line.starts_with('#') => {}
                    _ => queries.push((line.to_owned(), alert)),
                }
            }
        }
    }
    let (least, alerts) = match scope {
        Scope::Task => (15, 3),
        Scope::Instance => (3, 1),
    };
    assert!(queries.len() >= least, "{queries:?}");
    assert!(queries.iter().filter(|(_, alert)| *alert).count() >= alerts);
    for (promql, alert) in &queries {
        let result = query_checked(prometheus, promql).unwrap_or_else(|e| panic!("{promql}: {e}"));
        assert_eq!(result.is_empty(), *alert, "documented query: {promql}");
    }
}

/// Every query of the dashboard, variables at "All", runs on this Prometheus and returns series.
fn dashboard_queries(prometheus: &Prometheus) {
    let text_of = std::fs::read_to_string(project_dir().join("examples/grafana-dashboard.json"))
        .expect("the dashboard");
    let dashboard: Value = json::from_str(&text_of).expect("JSON");
    let all = |expr: &str| {
        expr.replace("$cluster", ".*")
            .replace("$family", ".*")
            .replace("$task", ".*")
            .replace("$__rate_interval", "15s")
    };
    let Some(Value::Array(panels)) = get(&dashboard, "panels") else {
        panic!("panels");
    };
    let mut checked = 0;
    for panel in panels {
        let title = text(get(panel, "title"));
        let Some(Value::Array(targets)) = get(panel, "targets") else {
            panic!("{title}: targets");
        };
        for t in targets {
            let expr = all(text(get(t, "expr")));
            let result = query_checked(prometheus, &expr)
                .unwrap_or_else(|e| panic!("panel {title:?}: {expr}: {e}"));
            assert!(!result.is_empty(), "panel {title:?} shows nothing: {expr}");
            checked += 1;
        }
    }
    // Variables: Grafana's label_values(METRIC{...}, LABEL) is `group by (LABEL) (METRIC{...})`.
    let Some(Value::Array(variables)) = get(&dashboard, "templating").and_then(|t| get(t, "list"))
    else {
        panic!("templating");
    };
    for variable in variables {
        let definition = text(get(variable, "definition"));
        let inner = definition
            .strip_prefix("label_values(")
            .and_then(|d| d.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {definition}"));
        let (selector, label) = inner.rsplit_once(", ").expect("METRIC, LABEL");
        let expr = all(&format!("group by ({label}) ({selector})"));
        let values = query_checked(prometheus, &expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert!(!values.is_empty(), "variable {definition} has no values");
        checked += 1;
    }
    assert!(checked >= 20, "{checked} queries");
    // Containers that exited 0 on purpose are not "not running": both fixtures have a stopped
    // container with exit code 0, and the panel says 0.
    let stopped = query(
        prometheus,
        "count(ecs_container_known_status{status!=\"RUNNING\"})",
    );
    assert!(stopped.first().and_then(sample).is_some_and(|n| n >= 2.0));
    let not_running = panels
        .iter()
        .find(|p| text(get(p, "title")) == "Containers not running")
        .and_then(|p| match get(p, "targets") {
            Some(Value::Array(t)) => t.first(),
            _ => None,
        })
        .map(|t| all(text(get(t, "expr"))))
        .expect("the not-running panel");
    assert_eq!(
        query(prometheus, &not_running).first().and_then(sample),
        Some(0.0)
    );
}
