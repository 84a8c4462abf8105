//! Promises of the README that a one-line bug once broke with the whole suite still green. Each
//! test here fails on that bug (they were written against it, put in by hand).

mod common;

use std::time::Duration;

use common::{
    Behaviour, Endpoint, Exporter, TempDir, exporter_command, fixture, parse_exposition,
    project_dir, value,
};
use miniserde::json::{self, Value};

/// The cap the README promises. Written out, not taken from the code: a changed constant must
/// fail here.
const PROMISED_CAP: usize = 4 * 1024 * 1024;

fn fargate_file(name: &str) -> String {
    std::fs::read_to_string(project_dir().join("fixtures/fargate").join(name)).expect("fixture")
}

/// The Fargate fixture's documents with `edit` applied to the parsed stats.
fn edited_stats(edit: impl FnOnce(&mut json::Object)) -> String {
    let mut stats: Value = json::from_str(&fargate_file("stats.json")).expect("JSON");
    let Value::Object(map) = &mut stats else {
        panic!("stats is an object");
    };
    edit(map);
    json::to_string(&stats)
}

/// The stats entry of the container named `name`.
fn container<'a>(stats: &'a mut json::Object, name: &str) -> &'a mut json::Object {
    stats
        .values_mut()
        .find_map(|v| match v {
            Value::Object(o) if matches!(o.get("name"), Some(Value::String(n)) if n == name) => {
                Some(o)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no stats for {name}"))
}

fn object<'a>(o: &'a mut json::Object, key: &str) -> &'a mut json::Object {
    match o.get_mut(key) {
        Some(Value::Object(inner)) => inner,
        _ => panic!("{key} is an object"),
    }
}

fn scrape_documents(task: &str, stats: &str) -> Vec<common::Series> {
    let dir = TempDir::new("promise");
    dir.documents(task, stats);
    let e = Exporter::start(&["--ecs.metadata-uri", dir.0.to_str().expect("UTF-8")]);
    parse_exposition(&e.metrics())
}

#[test]
fn bodies_are_read_up_to_exactly_4_mib() {
    // /task padded with spaces (still valid JSON) to the cap, and to one byte past it.
    let task = fargate_file("task.json");
    let padded = |len: usize| {
        let mut body = task.clone().into_bytes();
        assert!(body.len() < len);
        body.resize(len, b' ');
        body
    };
    let (at_cap, past_cap) = (padded(PROMISED_CAP), padded(PROMISED_CAP + 1));
    let stats = fargate_file("stats.json").into_bytes();
    for (body, up) in [(at_cap, 1.0), (past_cap, 0.0)] {
        let endpoint = Endpoint::start();
        endpoint.set("/task", Behaviour::json(body));
        endpoint.set("/task/stats", Behaviour::json(stats.clone()));
        let e = Exporter::start(&["--ecs.metadata-uri", &endpoint.base]);
        let series = parse_exposition(&e.metrics());
        assert_eq!(value(&series, "ecs_up", &[]), Some(up), "up {up}");
        if up == 0.0 {
            assert!(e.log().contains("larger than 4 MiB"), "{}", e.log());
        }
    }
}

#[test]
fn restarts_are_reported_with_or_without_stats() {
    // db-migrate has no stats (null); give it a restart count.
    let task = fargate_file("task.json");
    let edited = task.replacen(
        "\"Name\": \"db-migrate\",",
        "\"Name\": \"db-migrate\", \"RestartCount\": 3,",
        1,
    );
    assert_ne!(task, edited, "the fixture names db-migrate");
    let series = scrape_documents(&edited, &fargate_file("stats.json"));
    assert_eq!(
        value(
            &series,
            "ecs_container_restarts_total",
            &[("container_name", "db-migrate")]
        ),
        Some(3.0)
    );
}

#[test]
fn the_working_set_is_floored_at_0() {
    // ecs-exporter's inactive_file is 135,168 bytes; make usage smaller than that.
    let stats = edited_stats(|s| {
        let memory = object(container(s, "ecs-exporter"), "memory_stats");
        memory.insert("usage".into(), Value::Number(json::Number::U64(100_000)));
    });
    let series = scrape_documents(&fargate_file("task.json"), &stats);
    let working_set = |name| {
        value(
            &series,
            "ecs_container_memory_working_set_bytes",
            &[("container_name", name)],
        )
    };
    assert_eq!(working_set("ecs-exporter"), Some(0.0));
    assert_eq!(working_set("checkout"), Some(412_647_424.0 - 61_210_624.0));
}

#[test]
fn an_empty_blkio_list_writes_no_storage_sample() {
    let stats = edited_stats(|s| {
        let blkio = object(container(s, "ecs-exporter"), "blkio_stats");
        blkio.insert(
            "io_service_bytes_recursive".into(),
            Value::Array(json::Array::new()),
        );
    });
    let series = scrape_documents(&fargate_file("task.json"), &stats);
    for family in [
        "ecs_container_storage_read_bytes_total",
        "ecs_container_storage_write_bytes_total",
    ] {
        assert_eq!(
            value(&series, family, &[("container_name", "ecs-exporter")]),
            None,
            "{family}"
        );
        assert!(
            value(&series, family, &[("container_name", "checkout")]).is_some(),
            "{family}: the other container keeps it"
        );
    }
}

#[test]
fn health_check_is_healthy_on_200_only() {
    for (status, exit) in [(200, 0), (503, 1), (500, 1), (404, 1)] {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("binds");
        let port = server.server_addr().to_ip().expect("ip").port();
        let answer = std::thread::spawn(move || {
            if let Ok(Some(request)) = server.recv_timeout(common::ms(5000)) {
                let _ = request.respond(tiny_http::Response::empty(status));
            }
        });
        let out = exporter_command()
            .args([
                "--health-check",
                &format!("--web.listen-address=127.0.0.1:{port}"),
            ])
            .output()
            .expect("runs");
        let _ = answer.join();
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(exit), "{status}: {said}");
        if exit == 1 {
            assert!(said.contains(&format!("answered {status}")), "{said}");
        }
    }
}

#[test]
fn other_methods_get_405_on_every_path() {
    let e = Exporter::start(&["--ecs.metadata-uri", &fixture("fargate")]);
    for path in ["/metrics", "/health", "/"] {
        for method in ["POST", "PUT", "DELETE"] {
            let r = e.request(method, path);
            assert_eq!(r.status_code, 405, "{method} {path}");
            assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method} {path}");
        }
    }
}

/// SIGTERM, wait for the exit, and everything it wrote to stderr.
fn stop(mut e: Exporter) -> String {
    let (status, _) = e
        .terminate(common::ms(10_000))
        .expect("exits after SIGTERM");
    let log = e.log();
    assert!(status.success(), "{status:?}: {log}");
    log
}

#[test]
fn log_level_filters_lines_below_it() {
    // A failing /task/stats gives a WARN line per scrape; starting gives INFO lines.
    let endpoint = Endpoint::fixture("fargate");
    endpoint.set("/task/stats", Behaviour::Status(500));
    let uri = format!("--ecs.metadata-uri={}", endpoint.base);
    for (level, want_info, want_warn) in [
        ("info", true, true),
        ("warn", false, true),
        ("error", false, false),
    ] {
        let e = Exporter::start(&[&uri, &format!("--log.level={level}")]);
        assert_eq!(e.get("/metrics").status_code, 200);
        let log = stop(e);
        assert_eq!(log.contains("level=INFO"), want_info, "{level}: {log}");
        assert_eq!(log.contains("level=WARN"), want_warn, "{level}: {log}");
        assert!(!log.contains("level=DEBUG"), "{level}: {log}");
    }
}

#[test]
fn shutdown_is_logged() {
    let e = Exporter::start(&["--ecs.metadata-uri", &fixture("fargate")]);
    let log = stop(e);
    assert!(
        log.contains("msg=\"shutting down\" signal=SIGTERM"),
        "{log}"
    );
    assert!(log.trim_end().ends_with("msg=stopped"), "{log}");
}

#[test]
fn min_refresh_interval_reuses_a_failed_fetch_too() {
    let endpoint = Endpoint::start();
    endpoint.set("/task", Behaviour::Status(500));
    let uri = format!("--ecs.metadata-uri={}", endpoint.base);
    let e = Exporter::start(&[&uri, "--ecs.min-refresh-interval=30s"]);
    for _ in 0..3 {
        let series = parse_exposition(&e.metrics());
        assert_eq!(value(&series, "ecs_up", &[]), Some(0.0));
    }
    assert_eq!(
        endpoint.hits(),
        1,
        "one /task request, reused (failure included) for 30 s"
    );
}

#[test]
fn the_open_files_limit_is_raised_to_the_hard_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one plain struct.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    assert!(
        limit.rlim_max > 256,
        "this test needs a hard limit above 256, not {}",
        limit.rlim_max
    );
    // Start the exporter with a soft limit of 256 under the same hard limit.
    fn lower_soft_limit() -> std::io::Result<()> {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit read and write one plain struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit.rlim_cur = 256;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
    let e = Exporter::start_with(
        &["--ecs.metadata-uri", &fixture("fargate")],
        Some(lower_soft_limit),
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", e.pid())).expect("limits");
    let row = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("the open files row");
    let numbers: Vec<&str> = row.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers.len(), 2, "{row}");
    assert_eq!(numbers[0], numbers[1], "soft = hard: {row}");
    assert_eq!(numbers[1], limit.rlim_max.to_string(), "{row}");
    let log = stop(e);
    assert!(
        !log.contains("level=WARN"),
        "raised without a warning: {log}"
    );
}

#[test]
fn both_documents_at_once_while_task_answers_one_after_a_failure() {
    // 200 ms per request, so that requests made at once overlap.
    let endpoint = Endpoint::fixture("fargate");
    let slow = Duration::from_millis(200);
    let dir = project_dir().join("fixtures/fargate");
    let task = Behaviour::file(&dir.join("task.json")).delayed(slow);
    endpoint.set("/task", task.clone());
    endpoint.set(
        "/task/stats",
        Behaviour::file(&dir.join("stats.json")).delayed(slow),
    );
    let e = Exporter::start(&["--ecs.metadata-uri", &endpoint.base]);
    let both = vec!["/task".to_owned(), "/task/stats".to_owned()];
    let up = |e: &Exporter| value(&parse_exposition(&e.metrics()), "ecs_up", &[]);

    // The first scrape knows nothing of the endpoint: one after the other.
    assert_eq!(up(&e), Some(1.0));
    assert_eq!(endpoint.take_requests(), (both.clone(), 1));
    // /task answered: from now on both at once, one round trip.
    assert_eq!(up(&e), Some(1.0));
    assert_eq!(endpoint.take_requests(), (both.clone(), 2));
    // /task fails: this scrape asked for both; the next asks /task alone, and keeps doing so.
    endpoint.set("/task", Behaviour::Status(500).delayed(slow));
    assert_eq!(up(&e), Some(0.0));
    assert_eq!(endpoint.take_requests(), (both.clone(), 2));
    for _ in 0..2 {
        assert_eq!(up(&e), Some(0.0));
        assert_eq!(endpoint.take_requests(), (vec!["/task".to_owned()], 1));
    }
    // /task recovers: one after the other once, then both at once again.
    endpoint.set("/task", task);
    assert_eq!(up(&e), Some(1.0));
    assert_eq!(endpoint.take_requests(), (both.clone(), 1));
    assert_eq!(up(&e), Some(1.0));
    assert_eq!(endpoint.take_requests(), (both, 2));
}

#[test]
fn a_task_memory_limit_of_0_is_unset() {
    // ECS Managed Instances report 0; Go v0.4.0 writes it as a limit of 0 bytes.
    let task = fargate_file("task.json");
    let edited = task.replacen("\"Memory\": 1024", "\"Memory\": 0", 1);
    assert_ne!(task, edited, "the fixture's task memory limit");
    let series = scrape_documents(&edited, &fargate_file("stats.json"));
    assert_eq!(value(&series, "ecs_task_memory_limit_bytes", &[]), None);
    assert_eq!(value(&series, "ecs_task_cpu_limit_vcpus", &[]), Some(0.5));
    let unchanged = scrape_documents(&task, &fargate_file("stats.json"));
    assert_eq!(
        value(&unchanged, "ecs_task_memory_limit_bytes", &[]),
        Some(1_073_741_824.0)
    );
}

/// A container name of thousands of bytes is written whole: two such names that differ only at
/// their ends stay two containers (cut or dropped past 4,096 bytes, they became one
/// `container_name=""` series and the second one's samples were lost).
#[test]
fn a_long_container_name_is_kept_whole() {
    let long = |end: &str| format!("{}{end}", "n".repeat(5000));
    let task = fargate_file("task.json")
        .replace(
            "\"Name\": \"checkout\"",
            &format!("\"Name\": \"{}\"", long("1")),
        )
        .replace(
            "\"Name\": \"ecs-exporter\"",
            &format!("\"Name\": \"{}\"", long("2")),
        );
    let series = scrape_documents(&task, &fargate_file("stats.json"));
    let mut names: Vec<&str> = series
        .iter()
        .flat_map(|(_, labels, _)| labels.iter())
        .filter(|(k, _)| k == "container_name")
        .map(|(_, v)| v.as_str())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names,
        ["db-migrate", long("1").as_str(), long("2").as_str()]
    );
    for name in [long("1"), long("2")] {
        let cpu = value(
            &series,
            "ecs_container_cpu_usage_seconds_total",
            &[("container_name", &name), ("cpu", "0")],
        )
        .or_else(|| {
            value(
                &series,
                "ecs_container_memory_usage_bytes",
                &[("container_name", &name)],
            )
        });
        assert!(cpu.is_some(), "no samples for {}...", &name[..10]);
    }
}

/// A `/task/stats` far longer than the containers kept of `/task` is cut as `/task` is: 10,000
/// containers are cut to the first 64, and the stats kept are theirs, so the scrape is what the
/// first 64 alone give (the 10,000 stats entries, 1 MB, were refused whole as too large once
/// decoded: `ecs_up 0` and no container's stats).
#[test]
fn stats_are_cut_where_the_containers_are() {
    let kept = 64;
    let container = |i: usize| {
        format!(
            "{{\"DockerId\": \"{i:064x}\", \"Name\": \"c{i}\", \"KnownStatus\": \"RUNNING\", \
             \"Limits\": {{\"CPU\": 0, \"Memory\": 512}}}}"
        )
    };
    let entry = |i: usize| {
        format!(
            "\"{i:064x}\": {{\"read\": \"2024-01-01T00:00:00Z\", \
             \"cpu_stats\": {{\"cpu_usage\": {{\"total_usage\": {}}}}}, \
             \"memory_stats\": {{\"usage\": {}, \"limit\": 536870912}}}}",
            1000 + i,
            2000 + i
        )
    };
    let task = |n: usize| {
        let containers: Vec<String> = (0..n).map(container).collect();
        format!(
            "{{\"TaskARN\": \"arn:aws:ecs:us-east-1:1:task/c/t\", \"Containers\": [{}]}}",
            containers.join(",")
        )
    };
    let stats = |n: usize| {
        let entries: Vec<String> = (0..n).rev().map(entry).collect();
        format!("{{{}}}", entries.join(","))
    };
    let all = stats(10_000);
    assert!(all.len() > 1_500_000, "{} bytes", all.len());
    let endpoint = Endpoint::start();
    endpoint.set("/task", Behaviour::json(task(10_000)));
    endpoint.set("/task/stats", Behaviour::json(all));
    let e = Exporter::start(&[
        "--ecs.metadata-uri",
        &endpoint.base,
        "--web.disable-exporter-metrics",
    ]);
    let cut = e.metrics();
    let series = parse_exposition(&cut);
    assert_eq!(value(&series, "ecs_up", &[]), Some(1.0), "{}", e.log());
    let cpu: Vec<&common::Series> = series
        .iter()
        .filter(|s| s.0 == "ecs_container_cpu_usage_seconds_total")
        .collect();
    assert_eq!(cpu.len(), kept, "every container kept has its CPU sample");
    endpoint.set("/task", Behaviour::json(task(kept)));
    endpoint.set("/task/stats", Behaviour::json(stats(kept)));
    assert_eq!(cut, e.metrics(), "the first 64 containers alone");
    let log = e.log();
    assert!(log.contains("endpoint=/task left_out=9936"), "{log}");
    assert!(!log.contains("endpoint=/task/stats"), "{log}");
}
