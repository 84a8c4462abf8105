//! The HTTP contract of the real binary: endpoints, methods, content types, exporter metrics,
//! and what a scrape says when the metadata endpoint fails.

mod common;

use common::{Behaviour, Endpoint, Exporter, fixture, parse_exposition, project_dir, value};

#[test]
fn endpoints_methods_and_content_types() {
    let e = Exporter::start(&["--ecs.metadata-uri", &fixture("fargate")]);

    let health = e.get("/health");
    assert_eq!(
        (health.status_code, health.as_str().expect("UTF-8")),
        (200, "ok")
    );

    let landing = e.get("/");
    assert_eq!(landing.status_code, 200);
    assert_eq!(
        landing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = landing.as_str().expect("UTF-8");
    assert!(page.contains("<a href=\"/metrics\">Metrics</a>"), "{page}");
    assert!(
        page.contains(&format!("version {}", env!("CARGO_PKG_VERSION"))),
        "{page}"
    );

    assert_eq!(e.get("/nope").status_code, 404);
    assert_eq!(e.get("/metrics/").status_code, 404);

    let with_query = e.get("/metrics?collect[]=x");
    assert_eq!(
        with_query.status_code, 200,
        "the query string is ignored for routing"
    );

    for method in ["POST", "DELETE", "PUT"] {
        let r = e.request(method, "/metrics");
        assert_eq!(r.status_code, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}");
    }

    let head = e.request("HEAD", "/metrics");
    assert_eq!(head.status_code, 200);
    assert_eq!(
        head.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8; escaping=underscores")
    );
    assert!(head.as_bytes().is_empty(), "HEAD has no body");
}

#[test]
fn a_custom_telemetry_path_moves_the_metrics() {
    let e = Exporter::start(&[
        "--ecs.metadata-uri",
        &fixture("fargate"),
        "--web.telemetry-path=/prom",
    ]);
    assert_eq!(e.get("/metrics").status_code, 404);
    let r = e.get("/prom");
    assert_eq!(r.status_code, 200);
    parse_exposition(r.as_str().expect("UTF-8"));
    assert!(
        e.get("/")
            .as_str()
            .expect("UTF-8")
            .contains("href=\"/prom\"")
    );
}

#[test]
fn exporter_metrics_by_default_and_build_info_always() {
    let e = Exporter::start(&["--ecs.metadata-uri", &fixture("fargate")]);
    let first = parse_exposition(&e.metrics());
    for name in [
        "process_cpu_seconds_total",
        "process_max_fds",
        "process_open_fds",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_virtual_memory_bytes",
        "process_virtual_memory_max_bytes",
    ] {
        assert!(value(&first, name, &[]).is_some_and(|v| v >= 0.0), "{name}");
    }
    let rss = value(&first, "process_resident_memory_bytes", &[]).unwrap_or(0.0);
    assert!(
        rss > 100_000.0 && rss < 64e6,
        "resident memory is plausible: {rss}"
    );
    // As promhttp: a scrape counts the ones answered before it.
    assert_eq!(
        value(
            &first,
            "promhttp_metric_handler_requests_total",
            &[("code", "200")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &first,
            "promhttp_metric_handler_requests_total",
            &[("code", "500")]
        ),
        Some(0.0)
    );
    e.get("/health");
    let second = parse_exposition(&e.metrics());
    assert_eq!(
        value(
            &second,
            "promhttp_metric_handler_requests_total",
            &[("code", "200")]
        ),
        Some(1.0)
    );

    let quiet = Exporter::start(&[
        "--ecs.metadata-uri",
        &fixture("fargate"),
        "--web.disable-exporter-metrics",
    ]);
    let series = parse_exposition(&quiet.metrics());
    assert!(
        !series
            .iter()
            .any(|(n, _, _)| n.starts_with("process_") || n.starts_with("promhttp_"))
    );
    let build = series
        .iter()
        .find(|(n, _, _)| n == "ecs_exporter_build_info")
        .expect("build info");
    let label = |k: &str| {
        build
            .1
            .iter()
            .find(|(l, _)| l == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(label("version"), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(label("goos"), Some("linux"));
    assert!(
        matches!(label("goarch"), Some("amd64" | "arm64")),
        "{build:?}"
    );
    assert!(
        label("rustversion").is_some_and(|v| v.starts_with("1.")),
        "{build:?}"
    );
    assert_eq!(build.2, 1.0);
}

#[test]
fn a_down_endpoint_still_answers_with_ecs_up_0_and_a_warning() {
    // A socket that refuses every connection.
    let down = common::raw::Refusing::new();
    let e = Exporter::start(&[
        &format!("--ecs.metadata-uri=http://{}/v4/x", down.address),
        "--web.disable-exporter-metrics",
    ]);
    let series = parse_exposition(&e.metrics());
    assert_eq!(value(&series, "ecs_up", &[]), Some(0.0));
    assert!(
        series
            .iter()
            .any(|(n, _, _)| n == "ecs_exporter_build_info")
    );
    assert!(
        !series
            .iter()
            .any(|(n, _, _)| n.starts_with("ecs_task_") || n.starts_with("ecs_container_"))
    );
    let log = e.log();
    let warn = log
        .lines()
        .find(|l| l.contains("level=WARN"))
        .unwrap_or_else(|| panic!("a warning: {log}"));
    assert!(
        warn.contains("msg=\"metadata request failed\" endpoint=/task "),
        "{warn}"
    );
}

#[test]
fn failing_stats_keep_the_task_families_and_the_next_scrape_recovers() {
    let endpoint = Endpoint::fixture("fargate");
    endpoint.set("/task/stats", Behaviour::Status(500));
    let uri = format!("--ecs.metadata-uri={}", endpoint.base);
    let e = Exporter::start(&[&uri, "--web.disable-exporter-metrics"]);

    let during = parse_exposition(&e.metrics());
    assert_eq!(value(&during, "ecs_up", &[]), Some(0.0));
    assert_eq!(value(&during, "ecs_task_cpu_limit_vcpus", &[]), Some(0.5));
    assert!(
        value(&during, "ecs_task_metadata_info", &[]).is_none(),
        "it has labels"
    );
    assert!(during.iter().any(|(n, _, _)| n == "ecs_task_metadata_info"));
    assert!(
        !during
            .iter()
            .any(|(n, _, _)| n == "ecs_container_cpu_usage_seconds_total")
    );
    let log = e.log();
    assert!(
        log.contains("endpoint=/task/stats error=\"HTTP 500 (Internal Server Error)\""),
        "{log}"
    );

    let stats = project_dir().join("fixtures/fargate/stats.json");
    endpoint.set("/task/stats", Behaviour::file(&stats));
    let after = e.metrics();
    let want = std::fs::read_to_string(project_dir().join("fixtures/fargate/metrics.prom"))
        .expect("golden");
    assert_eq!(
        common::mask_build_info(&after),
        want,
        "whole again once the fault clears"
    );
    assert_eq!(endpoint.hits(), 4, "two requests per scrape");
}

#[test]
fn json_logs_and_debug_lines_per_scrape() {
    let e = Exporter::start(&[
        "--ecs.metadata-uri",
        &fixture("fargate"),
        "--log.format=json",
        "--log.level=debug",
    ]);
    let body = e.metrics();
    let log = e.log();
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines.len() >= 3,
        "start, metadata reads and scrape lines: {log}"
    );
    for line in &lines {
        assert!(
            line.starts_with("{\"time\":\"") && line.ends_with('}'),
            "{line}"
        );
    }
    assert!(
        lines[0].contains("\"msg\":\"Listening on\""),
        "{}",
        lines[0]
    );
    assert!(
        log.contains("\"msg\":\"TLS is disabled.\",\"http2\":false,"),
        "{log}"
    );
    // The samples the line counts are the samples written.
    let written = body.lines().filter(|l| !l.starts_with('#')).count();
    assert!(
        log.contains(&format!("\"up\":true,\"tasks\":1,\"samples\":{written},")),
        "{written} samples: {log}"
    );
    assert!(log.contains("\"msg\":\"scrape done\""), "{log}");
}

#[test]
fn scrapes_through_chunked_answers_and_connections_the_endpoint_closed_while_idle() {
    let endpoint = Endpoint::fixture("fargate");
    endpoint.set_idle_timeout(std::time::Duration::from_millis(100));
    // The fixture's documents are over 2 KiB: the endpoint sends them as the agent does, chunked
    // without a Content-Length.
    let address = endpoint.base.trim_start_matches("http://");
    let address = address.split('/').next().unwrap_or(address);
    let mut stream = std::net::TcpStream::connect(address).expect("connects");
    std::io::Write::write_all(
        &mut stream,
        b"GET /v4/fake/task/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .expect("asks");
    let answer = common::read_all(stream);
    let head = answer.split("\r\n\r\n").next().unwrap_or("");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nTransfer-Encoding: chunked"), "{head}");
    assert!(!head.contains("Content-Length"), "{head}");

    let e = Exporter::start(&[
        "--ecs.metadata-uri",
        &endpoint.base,
        "--web.disable-exporter-metrics",
    ]);
    let want = std::fs::read_to_string(project_dir().join("fixtures/fargate/metrics.prom"))
        .expect("golden");
    assert_eq!(common::mask_build_info(&e.metrics()), want);
    // Once the endpoint has closed the idle connections, the next scrape finds any connection
    // of the last one closed.
    common::wait_until(
        "the endpoint closes idle connections",
        common::ms(5000),
        || endpoint.open_connections() == 0,
    );
    assert_eq!(common::mask_build_info(&e.metrics()), want);
    assert_eq!(endpoint.hits(), 5, "one raw request and two per scrape");
}
