//! The deployment kit in `examples/`, and promtool on the exporter's output: every JSON file
//! parses, the task definitions run the sidecar as documented, every Prometheus config that
//! Debian's promtool understands is accepted, and every metric the dashboard queries exists.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Exporter, project_dir};
use ecs_exporter::collect::FAMILIES;
use miniserde::json::{self, Value};

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(project_dir().join("examples"))
        .expect("examples/")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

fn parse(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).expect("readable");
    json::from_str(&text).unwrap_or_else(|_| panic!("{} is not valid JSON", path.display()))
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(o) => o.get(key),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<&str> {
    match v {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v {
        Some(Value::Number(n)) => n.to_string().parse().ok(),
        _ => None,
    }
}

#[test]
fn every_json_file_parses() {
    let json: Vec<PathBuf> = examples()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(json.len() >= 3, "{json:?}");
    for path in json {
        parse(&path);
    }
}

#[test]
fn task_definitions_run_the_sidecar_as_documented() {
    for name in [
        "fargate-task-definition.json",
        "ec2-bridge-task-definition.json",
    ] {
        let task = parse(&project_dir().join("examples").join(name));
        let Some(Value::Array(containers)) = get(&task, "containerDefinitions") else {
            panic!("{name}: containerDefinitions");
        };
        let exporter = containers
            .iter()
            .find(|c| text(get(c, "name")) == Some("ecs-exporter"))
            .unwrap_or_else(|| panic!("{name}: an ecs-exporter container"));
        assert!(
            matches!(get(exporter, "essential"), Some(Value::Bool(false))),
            "{name}: essential false"
        );
        let reservation = number(get(exporter, "memoryReservation")).unwrap_or(0.0);
        assert!(
            (8.0..=64.0).contains(&reservation),
            "{name}: a small memory reservation, {reservation}"
        );
        let Some(Value::Array(ports)) = get(exporter, "portMappings") else {
            panic!("{name}: ports")
        };
        assert!(
            ports
                .iter()
                .any(|p| number(get(p, "containerPort")) == Some(9779.0)),
            "{name}: port 9779"
        );
        let check = get(exporter, "healthCheck").and_then(|h| get(h, "command"));
        let Some(Value::Array(command)) = check else {
            panic!("{name}: healthCheck")
        };
        let words: Vec<&str> = command.iter().filter_map(|w| text(Some(w))).collect();
        assert_eq!(
            words,
            ["CMD", "/bin/ecs_exporter", "--health-check"],
            "{name}"
        );
    }
}

#[test]
#[cfg_attr(
    no_promtool,
    ignore = "promtool is not installed (Debian package prometheus)"
)]
fn promtool_accepts_the_prometheus_configs_it_understands() {
    let promtool = "promtool";
    let configs: Vec<PathBuf> = examples()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    assert!(configs.len() >= 2);
    for path in configs {
        let out = Command::new(promtool)
            .arg("check")
            .arg("config")
            .arg(&path)
            .output()
            .expect("promtool runs");
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let uses_aws_sd = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .contains("aws_sd_configs:");
        if uses_aws_sd && said.contains("field aws_sd_configs not found") {
            // Prometheus's AWS (ECS) service discovery is newer than this promtool (Debian's 2.42).
            continue;
        }
        assert!(
            out.status.success(),
            "promtool check config {}: {said}",
            path.display()
        );
    }
}

/// Metric names in a PromQL expression: identifiers that start like ours.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = String::new();
    for c in expr.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' {
            current.push(c);
        } else {
            if current.starts_with("ecs_")
                || current.starts_with("process_")
                || current.starts_with("promhttp_")
            {
                names.push(std::mem::take(&mut current));
            }
            current.clear();
        }
    }
    names
}

fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o.iter() {
                match (k.as_str(), v) {
                    ("expr" | "query", Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn every_metric_the_dashboard_queries_exists() {
    let dashboard = parse(&project_dir().join("examples/grafana-dashboard.json"));
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    assert!(queries.len() >= 10, "{queries:?}");
    let mut used = 0;
    for expr in &queries {
        for name in metric_names(expr) {
            assert!(
                FAMILIES.iter().any(|f| f.name == name),
                "the dashboard queries {name}, which the exporter does not write"
            );
            used += 1;
        }
    }
    assert!(used >= 15);
}

#[test]
#[cfg_attr(
    no_promtool,
    ignore = "promtool is not installed (Debian package prometheus)"
)]
fn promtool_check_metrics_is_clean_for_every_fixture() {
    let promtool = "promtool";
    for entry in std::fs::read_dir(project_dir().join("fixtures"))
        .expect("fixtures")
        .flatten()
    {
        let dir = entry.path();
        let e = Exporter::start(&["--ecs.metadata-uri", dir.to_str().expect("UTF-8")]);
        let text = e.metrics();
        let mut child = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool runs");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("promtool ends");
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{}: promtool check metrics said: {said}",
            dir.display()
        );
    }
}
