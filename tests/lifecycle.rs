//! Start, health check and stop: what ECS does to the container.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Exporter, exporter_command, exporter_command_with, fixture, run};

/// Starts the exporter with `command`, waiting for its start-up line; None if it did not start.
fn start(mut command: std::process::Command) -> Option<std::process::Child> {
    let mut child = command
        .args([
            "--web.listen-address=127.0.0.1:0",
            "--ecs.metadata-uri",
            &fixture("fargate"),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut first = String::new();
    let _ = BufReader::new(child.stderr.take()?).read_line(&mut first);
    if !first.contains("msg=\"Listening on\"") {
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("the exporter did not start: {first}");
        return None;
    }
    Some(child)
}

/// Waits up to a second (the bound) for the process to exit, and expects status 0 (killing it
/// otherwise).
fn expect_exit_0_within_a_second(child: &mut std::process::Child, what: &str) {
    let start = Instant::now();
    let mut code = None;
    while code.is_none() && start.elapsed() < common::ms(1000) {
        if let Ok(Some(status)) = child.try_wait() {
            code = Some(status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if code.is_none() {
        let _ = child.kill();
    }
    assert_eq!(
        code,
        Some(0),
        "{what} ends the exporter with status 0 within a second"
    );
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(ok.success(), "kill -{sig} {pid}");
}

#[test]
fn sigterm_and_sigint_end_it_with_status_0_promptly() {
    for sig in ["TERM", "INT"] {
        let mut child = common::ChildGuard(start(exporter_command()).expect("the exporter starts"));
        signal(child.0.id(), sig);
        expect_exit_0_within_a_second(&mut child.0, &format!("SIG{sig}"));
    }
}

/// An idle keep-alive client does not hold the exit up: at SIGTERM its connection is closed at
/// once, with no request in hand to wait for.
#[test]
fn sigterm_with_an_idle_keep_alive_client_ends_it_at_once() {
    use std::io::{Read, Write};
    let e = Exporter::start(&["--ecs.metadata-uri", &fixture("fargate")]);
    let mut client =
        std::net::TcpStream::connect(e.base.trim_start_matches("http://")).expect("connects");
    client
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("a request");
    let mut answer = [0u8; 256];
    assert!(client.read(&mut answer).expect("an answer") > 0);
    // The connection stays open and idle.
    let asked = Instant::now();
    signal(e.pid(), "TERM");
    client
        .set_read_timeout(Some(common::ms(10_000)))
        .expect("timeout");
    // The exporter closes it as it goes.
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
    let took = asked.elapsed();
    let bound = common::ms(500);
    assert!(
        took < bound,
        "the idle connection was closed {took:?} after SIGTERM"
    );
}

#[test]
#[cfg_attr(
    no_pid_namespace,
    ignore = "no PID namespace here (unshare --pid fails)"
)]
fn as_pid_1_of_its_own_pid_namespace_sigterm_ends_it() {
    // First tell "no PID namespace here" from "the exporter failed to start".
    let probe = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "true"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "no PID namespace here: unshare --pid --fork says {probe:?}"
    );
    let child = start(exporter_command_with(&[
        "unshare",
        "--pid",
        "--fork",
        "--kill-child",
    ]))
    .expect("PID namespaces work here, but the exporter did not start in one (see above)");
    let mut child = common::ChildGuard(child);
    // The exporter is unshare's only child; in its namespace it is PID 1.
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.0.id()))
        .expect("children");
    let pid: u32 = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("one child");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let nspid = status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .expect("NSpid line");
    assert_eq!(
        nspid.split_whitespace().last(),
        Some("1"),
        "the exporter is PID 1: {nspid}"
    );

    signal(pid, "TERM");
    expect_exit_0_within_a_second(&mut child.0, "SIGTERM to PID 1");
}

#[test]
fn health_check_answers_for_a_running_server_and_fails_for_none() {
    let e = Exporter::start(&["--ecs.metadata-uri", &fixture("fargate")]);
    let listen = format!(
        "--web.listen-address={}",
        e.base.trim_start_matches("http://")
    );
    let (code, out, _) = run(&["--health-check", &listen], &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, format!("ok: {}/health answered 200\n", e.base));

    let closed = common::raw::Refusing::new();
    let port = closed.address.rsplit(':').next().unwrap_or_default();
    let (code, out, _) = run(
        &["--health-check", &format!("--web.listen-address=:{port}")],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        out.starts_with(&format!("unhealthy: http://127.0.0.1:{port}/health: ")),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1);
}

#[test]
fn health_check_names_a_timeout_as_one() {
    // A listener that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = silent.local_addr().expect("address");
    let started = Instant::now();
    let (code, out, _) = run(
        &["--health-check", &format!("--web.listen-address={address}")],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out,
        format!("unhealthy: http://{address}/health: no answer within 2 s\n")
    );
    assert!(started.elapsed() < common::ms(10_000));
    drop(silent);
}
