//! What a user who swaps the Go image for ours meets at the process boundary: log lines,
//! headers, exporter families, flags, listeners, start-up failures, stalled clients. Where the
//! Go binary in `../shared/reference/` can show the expected behaviour, it is run and compared.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Behaviour, Endpoint, Exporter, fixture, parse_exposition, project_dir, run, value};

use common::go::{Go, go_binary};

fn fargate() -> Endpoint {
    Endpoint::fixture("fargate")
}

/// A log line with its time and source masked: `time=T level=INFO source=S msg=...`.
fn masked(line: &str) -> String {
    let mut out = Vec::new();
    for field in line.trim_end().split(' ') {
        if field.starts_with("time=") {
            out.push("time=T".to_owned());
        } else if field.starts_with("source=") {
            out.push("source=S".to_owned());
        } else {
            out.push(field.to_owned());
        }
    }
    out.join(" ")
}

/// JSON's `"time":"..."` and `"source":"..."` masked the same way.
fn masked_json(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line.trim_end();
    for key in ["\"time\":\"", "\"source\":\""] {
        if let Some(at) = rest.find(key) {
            out.push_str(&rest[..at + key.len()]);
            out.push('X');
            rest = &rest[at + key.len()..];
            rest = &rest[rest.find('"').unwrap_or(0)..];
        }
    }
    out.push_str(rest);
    out
}

/// `address=127.0.0.1:PORT` (or JSON's) replaced by `address=A`.
fn without_address(line: &str, address: &str) -> String {
    line.replace(address, "A")
}

#[test]
fn start_up_lines_have_promslogs_shape() {
    let endpoint = fargate();
    for format in ["logfmt", "json"] {
        let format_flag = format!("--log.format={format}");
        let ours = Exporter::start(&["--ecs.metadata-uri", &endpoint.base, &format_flag]);
        let log = ours.log();
        let lines: Vec<&str> = log.lines().collect();
        assert!(lines.len() >= 3, "{log}");
        // Keys in promslog's order, UTC, three decimals in logfmt, up to nine in JSON.
        if format == "logfmt" {
            let time = lines[0].split(' ').next().unwrap_or("");
            assert_eq!(time.len(), "time=2026-11-26T07:34:46.306Z".len(), "{log}");
            assert!(time.ends_with('Z'), "{log}");
            assert!(lines[0].contains(" level=INFO source=server.rs:"), "{log}");
            assert!(lines[0].contains(" msg=\"Listening on\" address="), "{log}");
            assert!(
                lines[1].contains(" msg=\"TLS is disabled.\" http2=false address="),
                "{log}"
            );
        } else {
            assert!(lines[0].starts_with("{\"time\":\"20"), "{log}");
            assert!(
                lines[0].contains("Z\",\"level\":\"INFO\",\"source\":\"server.rs:"),
                "{log}"
            );
            assert!(lines[1].contains(",\"http2\":false,"), "{log}");
        }
        // Our own third line says what runs and where metadata comes from.
        assert!(lines[2].contains("Starting ecs_exporter"), "{log}");
        assert!(lines[2].contains(&endpoint.base), "{log}");
        // Task scope, the default, has nothing to say of instance scope.
        assert!(!log.contains("instance scope"), "{log}");
    }
}

#[test]
#[cfg_attr(
    no_go_reference,
    ignore = "the Go exporter in ../shared/reference cannot run here (absent, or not amd64)"
)]
fn start_up_lines_are_the_go_exporters_in_both_formats() {
    let endpoint = fargate();
    let go = go_binary();
    for format in ["logfmt", "json"] {
        let format_flag = format!("--log.format={format}");
        let ours = Exporter::start(&["--ecs.metadata-uri", &endpoint.base, &format_flag]);
        let our_address = ours.base.trim_start_matches("http://").to_owned();
        let mask = |l: &str| {
            if format == "json" {
                masked_json(l)
            } else {
                masked(l)
            }
        };
        let ours_first: Vec<String> = ours
            .log()
            .lines()
            .take(2)
            .map(|l| mask(&without_address(l, &our_address)))
            .collect();
        let go = Go::start(&go, &endpoint.base, &[&format_flag]);
        let go_address = go.base.trim_start_matches("http://").to_owned();
        let go_first: Vec<String> = go
            .first_lines
            .iter()
            .map(|l| mask(&without_address(l, &go_address)))
            .collect();
        assert_eq!(ours_first, go_first, "{format}: the first two lines");
    }
}

#[test]
fn exporter_families_include_in_flight_and_network_bytes() {
    let endpoint = fargate();
    let ours = Exporter::start(&["--ecs.metadata-uri", &endpoint.base]);
    let series = parse_exposition(&ours.metrics());
    assert_eq!(
        value(&series, "promhttp_metric_handler_requests_in_flight", &[]),
        Some(1.0),
        "the scrape being answered is in flight"
    );
    assert!(value(&series, "process_network_receive_bytes_total", &[]).is_some_and(|v| v > 0.0));
    assert!(value(&series, "process_network_transmit_bytes_total", &[]).is_some_and(|v| v > 0.0));
}

#[test]
#[cfg_attr(
    no_go_reference,
    ignore = "the Go exporter in ../shared/reference cannot run here (absent, or not amd64)"
)]
fn headers_and_exporter_families_match_go() {
    let endpoint = fargate();
    let ours = Exporter::start(&["--ecs.metadata-uri", &endpoint.base]);
    let go = Go::start(&go_binary(), &endpoint.base, &[]);
    let go_response = go.get("/metrics");
    let ours_response = ours.get("/metrics");
    assert_eq!(
        ours_response.header("content-type"),
        go_response.header("content-type")
    );
    // Every HELP and TYPE line Go writes for a family that is not about the Go runtime, we
    // write identically (go_* describe a Go runtime: listed in the README's differences).
    let meta = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("# "))
            .filter(|l| !l.split(' ').nth(2).unwrap_or("").starts_with("go_"))
            .map(str::to_owned)
            .collect()
    };
    let ours_meta = meta(ours_response.as_str().expect("UTF-8"));
    for line in meta(go_response.as_str().expect("UTF-8")) {
        // Our build info has rustversion for goversion: the same family, other HELP.
        if line.contains("ecs_exporter_build_info") && line.starts_with("# HELP") {
            continue;
        }
        assert!(ours_meta.contains(&line), "Go writes {line:?}; we do not");
    }
}

const SCALAR_FLAGS: &[(&str, &str)] = &[
    ("web.telemetry-path", "--web.telemetry-path=/m"),
    (
        "web.disable-exporter-metrics",
        "--web.disable-exporter-metrics",
    ),
    ("web.systemd-socket", "--web.systemd-socket"),
    ("web.config.file", "--web.config.file="),
    ("log.level", "--log.level=info"),
    ("log.format", "--log.format=logfmt"),
];

const ENV: [(&str, &str); 1] = [("ECS_CONTAINER_METADATA_URI_V4", "http://127.0.0.1:9/v4/x")];

#[test]
#[cfg_attr(
    no_go_reference,
    ignore = "the Go exporter in ../shared/reference cannot run here (absent, or not amd64)"
)]
fn go_refuses_the_same_repeated_flags() {
    let go = go_binary();
    for &(name, flag) in SCALAR_FLAGS {
        let output = Command::new(&go)
            .args([flag, flag])
            .envs(ENV)
            .output()
            .expect("Go runs");
        let go_err = String::from_utf8_lossy(&output.stderr);
        assert!(
            go_err.contains(&format!("error: flag '{name}' cannot be repeated")),
            "Go says {go_err}"
        );
        assert_eq!(output.status.code(), Some(1), "kingpin exits 1; we exit 2");
    }
}

#[test]
fn every_scalar_flag_given_twice_is_refused() {
    let env = ENV;
    for &(name, flag) in SCALAR_FLAGS {
        let (code, out, err) = run(&[flag, flag], &env);
        let want = format!("ecs_exporter: error: flag '{name}' cannot be repeated\n");
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (2, "", want.as_str()),
            "{flag}"
        );
    }
    // Our own scalar flags too, in either spelling; the two repeatable flags stay repeatable.
    for (name, a, b) in [
        ("ecs.timeout", "--ecs.timeout=3s", "--ecs.timeout=4s"),
        ("collector.cpu", "--collector.cpu", "--no-collector.cpu"),
        (
            "web.max-requests",
            "--web.max-requests=1",
            "--web.max-requests=2",
        ),
    ] {
        let (code, _, err) = run(&[a, b], &env);
        assert_eq!(code, 2, "{a} {b}");
        assert!(
            err.contains(&format!("flag '{name}' cannot be repeated")),
            "{err}"
        );
    }
}

#[test]
fn every_listen_address_is_served() {
    let second_flag = "--web.listen-address=127.0.0.1:0";
    let e = Exporter::start(&["--ecs.metadata-uri", &fixture("fargate"), second_flag]);
    let log = e.log();
    assert_eq!(log.matches("msg=\"Listening on\"").count(), 2, "{log}");
    assert_eq!(log.matches("msg=\"TLS is disabled.\"").count(), 2, "{log}");
    assert_eq!(e.bases.len(), 2, "{log}");
    assert_ne!(e.bases[0], e.bases[1], "{log}");
    for base in &e.bases {
        let r = minreq::get(format!("{base}/metrics"))
            .with_timeout(common::ms(10_000).as_secs())
            .send()
            .expect("answers");
        assert_eq!(r.status_code, 200, "{base}");
        assert!(r.as_str().expect("UTF-8").contains("ecs_up 1"), "{base}");
    }
    // Both listeners feed the same counter: the loop is one.
    let series = parse_exposition(&e.metrics());
    assert_eq!(
        value(
            &series,
            "promhttp_metric_handler_requests_total",
            &[("code", "200")]
        ),
        Some(2.0)
    );
}

/// The exporter with `--web.systemd-socket`, started as systemd would: `fd` at descriptor 3
/// without close-on-exec, `LISTEN_FDS=1`, and `LISTEN_PID` its own pid (a shell sets it to its
/// `$$`, then execs the exporter).
fn socket_activated(fd: std::os::fd::RawFd) -> Command {
    use std::os::unix::process::CommandExt;
    let exporter = common::exporter_command();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$@\"")
        .arg("sh")
        .arg(exporter.get_program())
        .args(exporter.get_args())
        .args([
            "--web.systemd-socket",
            "--ecs.metadata-uri",
            &fixture("fargate"),
        ])
        .env_remove("ECS_CONTAINER_METADATA_URI_V4");
    // SAFETY: dup2 and fcntl are async-signal-safe; dup2 onto itself would keep the
    // close-on-exec flag, so a descriptor already at 3 has the flag cleared instead.
    unsafe {
        command.pre_exec(move || {
            let rc = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

#[test]
fn systemd_socket_activation_serves_the_passed_socket() {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let address = listener.local_addr().expect("address");
    let mut command = socket_activated(listener.as_raw_fd());
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = common::ChildGuard(command.spawn().expect("starts"));
    let mut stderr = BufReader::new(child.0.stderr.take().expect("piped"));
    let mut first = String::new();
    let _ = stderr.read_line(&mut first);
    assert!(
        first.contains(&format!("address={address}")),
        "it listens on the passed socket: {first}"
    );
    drop(listener);
    let r = minreq::get(format!("http://{address}/metrics"))
        .with_timeout(common::ms(10_000).as_secs())
        .send()
        .expect("answers on the passed socket");
    assert_eq!(r.status_code, 200);

    // A descriptor 3 that is not a socket is named as such.
    let file =
        std::fs::File::open(project_dir().join("fixtures/fargate/task.json")).expect("opens");
    let out = socket_activated(file.as_raw_fd()).output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("socket activation descriptor 3 is not an open socket"),
        "{err}"
    );

    // Without sockets passed, a start-up failure as Go words it.
    let (code, _, err) = run(
        &[
            "--web.systemd-socket",
            "--ecs.metadata-uri",
            &fixture("fargate"),
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("msg=\"Error starting server\""), "{err}");
    assert!(
        err.contains("no socket activation file descriptors found"),
        "{err}"
    );
}

#[test]
fn start_up_failures_are_one_log_line_and_exit_1() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = busy.local_addr().expect("address").to_string();
    let listen = format!("--web.listen-address={address}");
    let dir = fixture("fargate");
    let (code, out, err) = run(&[&listen, "--ecs.metadata-uri", &dir], &[]);
    assert_eq!(
        (code, out.as_str(), err.lines().count()),
        (1, "", 1),
        "{err}"
    );
    assert!(
        err.contains("level=ERROR source=main.rs:")
            && err.contains("msg=\"Error starting server\" err=\"cannot listen on"),
        "{err}"
    );
    let (code, _, err) = run(
        &[&listen, "--ecs.metadata-uri", &dir, "--log.format=json"],
        &[],
    );
    assert_eq!((code, err.lines().count()), (1, 1), "{err}");
    assert!(err.starts_with("{\"time\":\""), "{err}");
    assert!(err.contains("\"level\":\"ERROR\""), "{err}");
    assert!(
        err.contains("\"msg\":\"Error starting server\",\"err\":\"cannot listen on"),
        "{err}"
    );

    let file = project_dir().join("fixtures/fargate/task.json");
    let file = file.to_str().expect("UTF-8");
    let (code, _, err) = run(&["--ecs.metadata-uri", file], &[]);
    assert_eq!((code, err.lines().count()), (1, 1), "{err}");
    assert!(err.contains("not a directory"), "{err}");
    let (code, _, err) = run(&["--ecs.metadata-uri", "/does/not/exist"], &[]);
    assert_eq!((code, err.lines().count()), (1, 1), "{err}");
    assert!(
        err.contains("/does/not/exist: No such file or directory"),
        "{err}"
    );
    // Without a scheme the endpoint's address reads as a directory: the line says how to give it.
    let (code, _, err) = run(&["--ecs.metadata-uri", "169.254.170.2/v4/abc"], &[]);
    assert_eq!((code, err.lines().count()), (1, 1), "{err}");
    assert!(
        err.contains("169.254.170.2/v4/abc: No such file or directory")
            && err.contains("(for the endpoint, give an http:// URL)"),
        "{err}"
    );

    for (value, want) in [
        ("", "ECS_CONTAINER_METADATA_URI_V4 is empty"),
        ("unix:///x", "unsupported scheme \\\"unix\\\""),
    ] {
        let (code, _, err) = run(&[], &[("ECS_CONTAINER_METADATA_URI_V4", value)]);
        assert_eq!((code, err.lines().count()), (1, 1), "{err}");
        assert!(err.contains("msg=\"Error creating client\""), "{err}");
        assert!(err.contains(want), "{value:?}: {err}");
    }
}

#[test]
fn a_directory_missing_a_document_is_a_warning_at_start() {
    let dir = common::TempDir::new("half-fixture");
    std::fs::copy(
        project_dir().join("fixtures/fargate/task.json"),
        dir.0.join("task.json"),
    )
    .expect("copies");
    let e = Exporter::start(&["--ecs.metadata-uri", dir.0.to_str().expect("UTF-8")]);
    let log = e.log();
    let warning = log
        .lines()
        .find(|l| l.contains("level=WARN"))
        .unwrap_or_else(|| panic!("no warning: {log}"));
    assert!(warning.contains("metadata file missing"), "{warning}");
    assert!(warning.contains("stats.json"), "{warning}");
    assert!(!warning.contains("task.json"), "{warning}");
    assert!(!warning.contains("--ecs.scope"), "{warning}");
    // Instance scope reads other files: the warning names them and says which scope reads these.
    let e = Exporter::start(&[
        "--ecs.metadata-uri",
        dir.0.to_str().expect("UTF-8"),
        "--ecs.scope=instance",
    ]);
    let log = e.log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("level=WARN")).collect();
    assert_eq!(warnings.len(), 2, "{log}");
    for warning in warnings {
        assert!(warning.contains("tasks"), "{warning}");
        assert!(warning.contains("run with --ecs.scope=task"), "{warning}");
    }
}

/// Labels asked for from a group that is off would silently write nothing: a warning says so.
#[test]
fn container_labels_with_their_group_off_is_a_warning_at_start() {
    let fargate = fixture("fargate");
    let warnings = |args: &[&str]| -> usize {
        let mut all = vec!["--ecs.metadata-uri", &fargate];
        all.extend_from_slice(args);
        let e = Exporter::start(&all);
        let log = e.log();
        log.lines()
            .filter(|l| l.contains("level=WARN") && l.contains("--ecs.container-labels"))
            .count()
    };
    assert_eq!(
        warnings(&[
            "--ecs.container-labels=a",
            "--no-collector.container_labels"
        ]),
        1
    );
    assert_eq!(warnings(&["--ecs.container-labels=a"]), 0);
    assert_eq!(warnings(&["--no-collector.container_labels"]), 0);
}

/// A scrape on another thread, once it has reached `endpoint`; joins to its status.
fn scrape_in_the_background(
    e: &Exporter,
    endpoint: &Endpoint,
) -> std::thread::JoinHandle<Option<u16>> {
    let base = e.base.clone();
    let before = endpoint.hits();
    let scrape = common::raw::client(move || {
        minreq::get(format!("{base}/metrics"))
            .with_timeout(common::ms(60_000).as_secs())
            .send()
            .map(|r| r.status_code)
            .map_err(std::io::Error::other)
    });
    common::wait_until("the scrape reaches the endpoint", common::ms(5000), || {
        endpoint.hits() > before
    });
    scrape
}

#[test]
fn metrics_requests_past_the_limit_get_503_at_once() {
    // An endpoint that takes 2 s to answer /task.
    let slow = Endpoint::fixture("fargate");
    let task = Behaviour::file(&project_dir().join("fixtures/fargate/task.json"));
    slow.set("/task", task.delayed(common::ms(2000)));
    let e = Exporter::start(&["--ecs.metadata-uri", &slow.base, "--web.max-requests=1"]);
    let first = scrape_in_the_background(&e, &slow);
    let second = e.get("/metrics");
    assert_eq!(second.status_code, 503);
    assert!(
        !first.is_finished(),
        "answered at once, not after the slow scrape"
    );
    // Other paths are not metrics requests: /health is answered at once, with 200.
    assert_eq!(e.get("/health").status_code, 200);
    assert_eq!(first.join().expect("joins"), Some(200));
    let series = parse_exposition(&e.metrics());
    let code = |c| {
        value(
            &series,
            "promhttp_metric_handler_requests_total",
            &[("code", c)],
        )
    };
    assert_eq!((code("200"), code("503")), (Some(1.0), Some(1.0)));

    // 0 means no limit: the same two requests are both answered 200.
    let e = Exporter::start(&["--ecs.metadata-uri", &slow.base, "--web.max-requests=0"]);
    let first = scrape_in_the_background(&e, &slow);
    assert_eq!(e.get("/metrics").status_code, 200);
    assert_eq!(first.join().expect("joins"), Some(200));
}

#[test]
fn stalled_and_idle_connections_are_closed_after_the_idle_timeout() {
    let e = Exporter::start(&[
        "--ecs.metadata-uri",
        &fixture("fargate"),
        "--web.idle-timeout=1s",
    ]);
    let address = e.base.trim_start_matches("http://").to_owned();
    // Half a request, then silence.
    let mut half = TcpStream::connect(&address).expect("connects");
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .expect("writes");
    // An answered keep-alive request, then silence.
    let mut idle = TcpStream::connect(&address).expect("connects");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("writes");
    for stream in [&mut half, &mut idle] {
        stream
            .set_read_timeout(Some(common::ms(10_000)))
            .expect("timeout");
    }
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = half.read_to_end(&mut answer);
    let half_closed = started.elapsed();
    let mut answer = Vec::new();
    let _ = idle.read_to_end(&mut answer);
    let idle_closed = started.elapsed();
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "the keep-alive request was answered first"
    );
    for (what, after) in [
        ("half a request", half_closed),
        ("idle keep-alive", idle_closed),
    ] {
        assert!(
            after >= Duration::from_millis(500) && after < common::ms(5000),
            "{what}: closed after {after:?}, want about 1 s"
        );
    }
    // Quiet for longer than the timeout, then a new client: still accepted and served
    // (the timeout also bounds how long accept() waits; the exporter must not stop accepting).
    // Not a wait for an event: what is tested is that this much time passes.
    std::thread::sleep(Duration::from_millis(2500));
    e.metrics();
    assert!(!e.log().contains("level=WARN"), "{}", e.log());
}
