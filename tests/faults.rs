//! A failing, slow or garbled metadata endpoint, on `/task` and on `/task/stats`: every scrape
//! still answers 200 within the timeout plus a little, with `ecs_up 0` and every family the data
//! that did arrive supports; a warning names the endpoint and the failure; the next scrape after
//! the fault clears is whole; memory stays bounded.

mod common;

use std::time::{Duration, Instant};

use common::{
    Exporter, Fault, FaultyMetadata, emulated, mask_build_info, parse_exposition, project_dir,
    value, vm_hwm,
};

/// The exporter's deadline per metadata request in these tests.
const TIMEOUT: Duration = Duration::from_secs(1);
/// "A little": process start-up, the other request, a loaded CI machine or an emulator.
const SLACK: Duration = Duration::from_secs(2);

fn golden() -> String {
    std::fs::read_to_string(project_dir().join("fixtures/fargate/metrics.prom"))
        .expect("golden file")
}

/// Injects `fault` on `/task`, then on `/task/stats`, checking each as [`check_on`] does.
fn check(fault: Fault, log_says: &str) {
    for on_stats in [false, true] {
        check_on(fault.clone(), on_stats, log_says);
    }
}

/// Injects `fault` on one endpoint, scrapes, checks, clears it, scrapes again.
fn check_on(fault: Fault, on_stats: bool, log_says: &str) {
    let dir = project_dir().join("fixtures/fargate");
    let endpoint = FaultyMetadata::start(dir.join("task.json"), dir.join("stats.json"));
    let uri = format!("--ecs.metadata-uri={}", endpoint.base);
    let e = Exporter::start(&[&uri, "--ecs.timeout=1s", "--web.disable-exporter-metrics"]);
    let what = format!(
        "{fault:?} on {}",
        if on_stats { "/task/stats" } else { "/task" }
    );
    if on_stats {
        endpoint.set(Fault::None, fault);
    } else {
        endpoint.set(fault, Fault::None);
    }

    let started = Instant::now();
    let series = parse_exposition(&e.metrics());
    let took = started.elapsed();
    assert!(took < TIMEOUT + SLACK, "{what}: the scrape took {took:?}");
    // A failed /task skips /task/stats: nothing to match stats to, and the agent rate-limits.
    let hits = endpoint.hits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(hits, if on_stats { 2 } else { 1 }, "{what}: requests made");
    assert_eq!(value(&series, "ecs_up", &[]), Some(0.0), "{what}");
    let has = |name: &str| series.iter().any(|(n, _, _)| n == name);
    assert!(has("ecs_exporter_build_info"), "{what}");
    if on_stats {
        // /task arrived: the task families and the container group are served.
        assert_eq!(
            value(&series, "ecs_task_cpu_limit_vcpus", &[]),
            Some(0.5),
            "{what}"
        );
        assert!(
            has("ecs_task_metadata_info") && has("ecs_container_info"),
            "{what}"
        );
        assert!(
            !has("ecs_container_cpu_usage_seconds_total")
                && !has("ecs_network_receive_bytes_total"),
            "{what}"
        );
    } else {
        assert!(
            !series
                .iter()
                .any(|(n, _, _)| n.starts_with("ecs_task_") || n.starts_with("ecs_container_")),
            "{what}"
        );
    }
    let endpoint_name = if on_stats {
        "endpoint=/task/stats "
    } else {
        "endpoint=/task "
    };
    let log = e.log();
    let warning = log
        .lines()
        .find(|l| l.contains("level=WARN") && l.contains(endpoint_name));
    let warning =
        warning.unwrap_or_else(|| panic!("{what}: no warning naming the endpoint in:\n{log}"));
    assert!(
        warning.contains(log_says),
        "{what}: the warning should say {log_says:?}: {warning}"
    );

    endpoint.set(Fault::None, Fault::None);
    assert_eq!(
        mask_build_info(&e.metrics()),
        golden(),
        "{what}: whole again once the fault clears"
    );
    if !emulated() {
        let peak = vm_hwm(e.pid()).expect("VmHWM");
        assert!(peak < 16 << 20, "{what}: peak resident memory {peak} bytes");
    }
}

#[test]
fn http_500() {
    check(
        Fault::Status(500),
        "error=\"HTTP 500 (Internal Server Error)\"",
    );
}

#[test]
fn http_429_is_named_as_rate_limiting() {
    check(Fault::Status(429), "rate limited by the ECS agent");
}

#[test]
fn http_404() {
    check(Fault::Status(404), "error=\"HTTP 404 (Not Found)\"");
}

#[test]
fn slower_than_the_timeout() {
    check(Fault::Slow(Duration::from_secs(3)), "timeout");
}

#[test]
fn no_response_at_all() {
    check(Fault::Silent, "timeout");
}

#[test]
fn connection_closed_without_a_response() {
    check(Fault::Reset, "request failed");
}

#[test]
fn body_cut_short() {
    // minreq returns what arrived before the close without checking Content-Length; the
    // truncated JSON is what fails, in the decoder.
    check(
        Fault::CutShort,
        "error=\"response is not a JSON object (malformed, truncated",
    );
}

#[test]
fn not_json() {
    check(Fault::NotJson, "not a JSON object");
}

#[test]
fn empty_body() {
    check(Fault::EmptyBody, "not a JSON object");
}

#[test]
fn a_100_mib_body_is_cut_at_the_cap() {
    check(Fault::Huge(100 << 20), "larger than 4 MiB");
}

#[test]
fn connection_refused() {
    // Nothing listens on the port: only /task can be refused this way (see Fault::Reset).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let uri = format!("--ecs.metadata-uri=http://127.0.0.1:{port}/v4/x");
    let e = Exporter::start(&[&uri, "--ecs.timeout=1s"]);
    let started = Instant::now();
    let series = parse_exposition(&e.metrics());
    assert!(started.elapsed() < TIMEOUT + SLACK);
    assert_eq!(value(&series, "ecs_up", &[]), Some(0.0));
    assert!(
        e.log().contains("endpoint=/task error=\"request failed"),
        "{}",
        e.log()
    );
}
