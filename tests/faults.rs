//! A failing, slow or garbled metadata endpoint, on `/task` and on `/task/stats`: every scrape
//! still answers 200 within the timeout plus a little, with `ecs_up 0` and every family the data
//! that did arrive supports; a warning names the endpoint and the failure; the next scrape after
//! the fault clears is whole; memory stays bounded.

mod common;

use std::time::{Duration, Instant};

use common::{
    Behaviour, Endpoint, Exporter, emulated, mask_build_info, parse_exposition, project_dir, value,
    vm_hwm,
};

/// The exporter's deadline per metadata request in these tests (scaled: the documents that
/// must arrive, 4 MiB of them in one test, must arrive within it under emulation too).
fn timeout() -> Duration {
    common::ms(1000)
}

/// `--ecs.timeout` of [`timeout`].
fn timeout_flag() -> String {
    format!("--ecs.timeout={}ms", timeout().as_millis())
}
/// "A little": process start-up, the other request, a loaded CI machine (scaled for an
/// emulator, as every bound is).
fn slack() -> Duration {
    common::ms(2000)
}

fn golden() -> String {
    std::fs::read_to_string(project_dir().join("fixtures/fargate/metrics.prom"))
        .expect("golden file")
}

/// The Fargate fixture's document at `path` (`/task` or `/task/stats`).
fn document(path: &str) -> std::sync::Arc<[u8]> {
    let file = if path == "/task" {
        "task.json"
    } else {
        "stats.json"
    };
    common::body_of(&project_dir().join("fixtures/fargate").join(file))
}

/// Injects the fault `make` builds from each document on `/task`, then on `/task/stats`,
/// checking each as [`check_on`] does.
fn check(make: impl Fn(std::sync::Arc<[u8]>) -> Behaviour, log_says: &str) {
    for path in ["/task", "/task/stats"] {
        check_on(make(document(path)), path, log_says);
    }
}

/// Injects `fault` on one path, scrapes, checks, clears it, scrapes again.
fn check_on(fault: Behaviour, path: &str, log_says: &str) {
    let on_stats = path == "/task/stats";
    let endpoint = Endpoint::fixture("fargate");
    let uri = format!("--ecs.metadata-uri={}", endpoint.base);
    let e = Exporter::start(&[&uri, &timeout_flag(), "--web.disable-exporter-metrics"]);
    let what = format!("{fault:.60?} on {path}");
    endpoint.set(path, fault);

    let started = Instant::now();
    let series = parse_exposition(&e.metrics());
    let took = started.elapsed();
    assert!(
        took < timeout() + slack(),
        "{what}: the scrape took {took:?}"
    );
    // A failed /task skips /task/stats: nothing to match stats to, and the agent rate-limits.
    assert_eq!(
        endpoint.hits(),
        if on_stats { 2 } else { 1 },
        "{what}: requests made"
    );
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

    endpoint.set(path, Behaviour::Json(document(path)));
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
        |_| Behaviour::Status(500),
        "error=\"HTTP 500 (Internal Server Error)\"",
    );
}

/// A 503 the agent did send is named as such; only an answer without a status line (which
/// minreq reports as a 503 of its own) is called that.
#[test]
fn http_503() {
    check(
        |_| Behaviour::Status(503),
        "error=\"HTTP 503 (Service Unavailable)\"",
    );
}

#[test]
fn http_429_is_named_as_rate_limiting() {
    check(|_| Behaviour::Status(429), "rate limited by the ECS agent");
}

#[test]
fn http_404() {
    check(|_| Behaviour::Status(404), "error=\"HTTP 404 (Not Found)\"");
}

#[test]
fn slower_than_the_timeout() {
    check(
        |body| Behaviour::Json(body).delayed(timeout() * 3),
        "timeout",
    );
}

#[test]
fn no_response_at_all() {
    check(|_| Behaviour::Stall, "timeout");
}

/// Header lines without end after one just under the 8 KiB header budget that ends in a bare
/// LF: minreq counted that line two bytes longer than it read, its budget wrapped below zero,
/// and every line after it was read into memory until the deadline (359 MB in 3 s, 1.1 GB in
/// 10 s, from a hostile-endpoint run). vendor/minreq/PATCHES.md 1.
#[test]
fn endless_headers_after_a_line_ended_by_a_bare_lf() {
    check(
        |_| {
            let mut head = b"HTTP/1.1 200 OK\r\nX-A: ".to_vec();
            head.resize(17 + 8191, b'a');
            head.push(b'\n');
            let line = format!("X-B: {}\r\n", "b".repeat(80));
            while head.len() < 32 << 20 {
                head.extend_from_slice(line.as_bytes());
            }
            Behaviour::raw(head)
        },
        "the headers' total size surpassed",
    );
}

#[test]
fn connection_closed_without_a_response() {
    check(|_| Behaviour::Close, "no HTTP status line came back");
}

#[test]
fn an_answer_that_is_not_http() {
    check(
        |_| Behaviour::raw("SSH-2.0-OpenSSH_9.6\r\n\r\n"),
        "no HTTP status line came back",
    );
}

#[test]
fn a_content_length_longer_than_the_body() {
    // The whole document, but a Content-Length 100 bytes longer, then the connection closed:
    // the JSON is complete, and still the read failed.
    check(
        |body| {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                body.len() + 100
            );
            let mut answer = head.into_bytes();
            answer.extend_from_slice(&body);
            Behaviour::raw(answer)
        },
        "the connection closed after",
    );
}

#[test]
fn a_chunked_body_closed_mid_chunk() {
    check(Behaviour::ClosedMidChunk, "not a JSON object");
}

#[test]
fn a_bad_chunk_size() {
    check(Behaviour::BadChunkSize, "request failed");
}

#[test]
fn a_redirect_is_named_and_not_followed() {
    check(
        |_| {
            Behaviour::raw(
                "HTTP/1.1 302 Found\r\nLocation: http://169.254.170.2/v4/other\r\nContent-Length: 0\r\n\r\n",
            )
        },
        "HTTP 302: a redirect to \\\"http://169.254.170.2/v4/other\\\", not followed",
    );
}

#[test]
fn an_interim_response_is_named() {
    check(
        |body| {
            let mut answer = b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n".to_vec();
            answer.extend(common::framed(200, &body));
            Behaviour::raw(answer)
        },
        "HTTP 103 (Early Hints): an interim response",
    );
}

#[test]
fn body_cut_short() {
    check(Behaviour::CutShort, "the connection closed after");
}

#[test]
fn not_json() {
    check(
        |_| Behaviour::json("<html><body>502 Bad Gateway</body></html>"),
        "not a JSON object",
    );
}

#[test]
fn empty_body() {
    check(|_| Behaviour::json(""), "not a JSON object");
}

#[test]
fn a_100_mib_body_is_cut_at_the_cap() {
    check(|_| Behaviour::Huge(100 << 20), "larger than 4 MiB");
}

#[test]
fn connection_refused() {
    // Nothing listens on the port: only /task can be refused this way (see Behaviour::Close).
    let closed = common::raw::Refusing::new();
    let uri = format!("--ecs.metadata-uri=http://{}/v4/x", closed.address);
    let e = Exporter::start(&[&uri, &timeout_flag()]);
    let started = Instant::now();
    let series = parse_exposition(&e.metrics());
    assert!(started.elapsed() < timeout() + slack());
    assert_eq!(value(&series, "ecs_up", &[]), Some(0.0));
    assert!(
        e.log().contains("endpoint=/task error=\"request failed"),
        "{}",
        e.log()
    );
}
