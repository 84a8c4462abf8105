//! A real Prometheus server (Debian's package) scrapes the exporter on loopback every second
//! while it serves the Fargate fixture. Through Prometheus's HTTP API: the target is up with no
//! scrape error, `ecs_task_metadata_info` carries the fixture's labels, and values equal the
//! fixture's. Bounded: it gives Prometheus 60 s, and stops everything it started.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Exporter, TempDir, project_dir};
use miniserde::json::{self, Value};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("address")
        .port()
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(o) => o.get(key),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> &str {
    match v {
        Some(Value::String(s)) => s,
        _ => "",
    }
}

/// `data.result` of an instant query.
fn query(prometheus: &str, promql: &str) -> Vec<Value> {
    let encoded: String = promql
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let url = format!("{prometheus}/api/v1/query?query={encoded}");
    let Ok(response) = minreq::get(url).with_timeout(5).send() else {
        return Vec::new();
    };
    let Ok(body) = response.as_str() else {
        return Vec::new();
    };
    let Ok(value) = json::from_str::<Value>(body) else {
        return Vec::new();
    };
    match get(&value, "data").and_then(|d| get(d, "result")) {
        Some(Value::Array(result)) => result.to_vec(),
        _ => Vec::new(),
    }
}

/// The sample value of one result (`value: [time, "1.5"]`).
fn sample(result: &Value) -> Option<f64> {
    match get(result, "value") {
        Some(Value::Array(pair)) => text(pair.get(1)).parse().ok(),
        _ => None,
    }
}

#[test]
#[cfg_attr(
    no_prometheus,
    ignore = "prometheus is not installed (Debian package prometheus)"
)]
fn a_real_prometheus_scrapes_the_exporter() {
    let fixture = project_dir().join("fixtures/fargate");
    let exporter = Exporter::start(&["--ecs.metadata-uri", fixture.to_str().expect("UTF-8")]);
    let target = exporter.base.trim_start_matches("http://").to_owned();

    let tmp = TempDir::new("prometheus");
    let config = tmp.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: ecs\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("config");
    let port = free_port();
    let server = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            tmp.0.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let _server = Killed(server);
    let prometheus = format!("http://127.0.0.1:{port}");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = query(&prometheus, "up{job=\"ecs\"}");
        if up.first().and_then(sample) == Some(1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not report up == 1 within 60 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let info = query(&prometheus, "ecs_task_metadata_info");
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
        let got = query(&prometheus, promql).first().and_then(sample);
        assert_eq!(got, Some(want), "{promql}");
    }

    let response = minreq::get(format!("{prometheus}/api/v1/targets"))
        .with_timeout(5)
        .send()
        .expect("targets");
    let targets: Value = json::from_str(response.as_str().expect("UTF-8")).expect("JSON");
    let Some(Value::Array(active)) = get(&targets, "data").and_then(|d| get(d, "activeTargets"))
    else {
        panic!("activeTargets");
    };
    assert_eq!(active.len(), 1);
    assert_eq!(text(get(&active[0], "health")), "up");
    assert_eq!(text(get(&active[0], "lastError")), "", "no scrape error");
}
