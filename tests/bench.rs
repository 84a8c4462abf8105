//! Benchmarks of the real binary, run on demand (they print figures; they assert nothing):
//!
//! ```sh
//! cargo test --release --target x86_64-unknown-linux-musl --test bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! - `soak`: `SOAK_SCRAPES` (default 100,000) sequential keep-alive scrapes; resident memory
//!   after the first 1,000 and at the end.
//! - `footprint`: the figures of docs/footprint.md's table (see its doc).
//! - `instance`: instance scope (`--ecs.scope=instance`) on `INSTANCE_TASKS` (default 100) tasks
//!   of `INSTANCE_CONTAINERS` (10) containers, `fixtures/ec2-bridge-cgroupv1`'s two containers
//!   repeated (stats of 3.3 and 3.4 KB each, compact): the bodies' and the
//!   answer's sizes, `INSTANCE_SCRAPES` (50) scrapes' median and slowest time, CPU seconds per
//!   scrape and VmHWM (with `INSTANCE_ACCEPT_ENCODING=gzip`, asking for gzip); and beside it one
//!   sidecar in task scope on one of those tasks, for the memory of a sidecar per task.
//! - `idle_connections`: as many clients as `--web.max-connections` allows (255 beside the
//!   benchmark's own connection) connect, send half a request (`IDLE_HEAD_BYTES` of it, default
//!   40; 16000 fills each one's head buffer) and go silent; RSS, threads and a scrape's time while
//!   they are held, and again after `--web.idle-timeout=5s` has closed them.
//!
//! - `slow_agent`: 10 and 40 scrapes at once against an endpoint that never answers, and SIGTERM
//!   with a fetch in flight (docs/design.md, "One fetch for every waiting scrape").
//!
//! `BENCH_OURS_BINARY` runs another build of ours in `side_by_side` and the others that start a
//! `Subject` (an earlier commit's static build, for a before-and-after).
//!
//! They all talk to the tests' one fake endpoint (`common::Endpoint`), which frames bodies as
//! the ECS agent does (the fixtures' bodies go out chunked) and answers from memory.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Endpoint, exporter_command, project_dir, shared_dir_if_present};

const GO_REFERENCE: &str = "reference/ecs_exporter-v0.4.0-linux-amd64";

/// The exporter under test, and a keep-alive connection to it.
struct Subject {
    port: u16,
    child: Child,
    stream: BufReader<TcpStream>,
    started: Instant,
    first_health: Duration,
    /// Header lines sent with every GET (each ending in CRLF).
    request_headers: String,
    /// The last answer's bytes on the wire: status line, headers and body as framed.
    wire: usize,
}

/// Which exporter a [`Subject`] runs.
#[derive(Clone, Copy, PartialEq)]
enum Binary {
    Ours,
    /// The Go exporter v0.4.0 in `../shared/reference`.
    Go,
}

impl Subject {
    fn start(metadata: &str, extra: &[&str]) -> Subject {
        Subject::start_binary(Binary::Ours, metadata, extra)
    }

    /// Either exporter against the endpoint at `metadata`: ours takes it as a flag, Go only
    /// from the variable ECS sets.
    fn start_binary(binary: Binary, metadata: &str, extra: &[&str]) -> Subject {
        let started = Instant::now();
        let mut command = match binary {
            Binary::Ours => {
                // Another build of ours (an earlier commit's), for a before-and-after.
                let mut c = match std::env::var("BENCH_OURS_BINARY") {
                    Ok(path) => std::process::Command::new(path),
                    Err(_) => exporter_command(),
                };
                c.arg(format!("--ecs.metadata-uri={metadata}"));
                c
            }
            Binary::Go => {
                let go = common::shared_dir().join(GO_REFERENCE);
                let mut c = std::process::Command::new(go);
                c.env("ECS_CONTAINER_METADATA_URI_V4", metadata);
                c
            }
        };
        command.args(extra);
        let (child, address) = listening(command);
        let port = address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        let stream = TcpStream::connect(&address).expect("connects");
        stream.set_nodelay(true).expect("nodelay");
        let mut subject = Subject {
            port,
            child,
            stream: BufReader::new(stream),
            started,
            first_health: Duration::ZERO,
            request_headers: String::new(),
            wire: 0,
        };
        let (status, _) = subject.get("/health");
        assert_eq!(status, 200);
        subject.first_health = subject.started.elapsed();
        subject
    }

    /// One keep-alive GET: (status, body length).
    fn get(&mut self, path: &str) -> (u16, usize) {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: bench\r\n{}\r\n",
            self.request_headers
        );
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .expect("request");
        let mut line = String::new();
        self.wire = self.stream.read_line(&mut line).expect("status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        let mut chunked = false;
        loop {
            line.clear();
            self.wire += self.stream.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            let header = line.to_ascii_lowercase();
            if let Some(v) = header.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            // Go's promhttp streams the exposition in chunks.
            chunked |= header.starts_with("transfer-encoding:") && header.contains("chunked");
        }
        if !chunked {
            let mut body = vec![0u8; length];
            self.stream.read_exact(&mut body).expect("body");
            self.wire += length;
            return (status, length);
        }
        let mut total = 0;
        loop {
            line.clear();
            self.wire += self.stream.read_line(&mut line).expect("chunk size");
            let size = usize::from_str_radix(line.trim(), 16).expect("hex chunk size");
            let mut chunk = vec![0u8; size + 2];
            self.stream.read_exact(&mut chunk).expect("chunk");
            self.wire += size + 2;
            total += size;
            if size == 0 {
                return (status, total);
            }
        }
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// utime + stime in seconds.
    #[allow(dead_code)] // used by the footprint benchmark
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("stat");
        let after = &stat[stat.rfind(')').expect(")") + 2..];
        let fields: Vec<u64> = after.split(' ').map(|f| f.parse().unwrap_or(0)).collect();
        (fields[11] + fields[12]) as f64 / 100.0
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fargate_fixture() -> (PathBuf, PathBuf) {
    match shared_dir_if_present() {
        Some(shared) => {
            let go = shared.join("conformance/ecs_exporter-v0.4.0/fixtures");
            (
                go.join("fargate_task_metadata.json"),
                go.join("fargate_task_stats.json"),
            )
        }
        None => {
            let ours = project_dir().join("fixtures/fargate");
            (ours.join("task.json"), ours.join("stats.json"))
        }
    }
}

#[test]
#[ignore = "benchmark: cargo test --release --target x86_64-unknown-linux-musl --test bench -- --ignored soak --nocapture"]
fn soak() {
    let scrapes: usize = common::env_or("SOAK_SCRAPES", 100_000);
    let (task, stats) = fargate_fixture();
    let endpoint = Endpoint::files(&task, &stats);
    let mut e = Subject::start(&endpoint.base, &["--web.disable-exporter-metrics"]);
    let mut rss_at_1000 = 0;
    let started = Instant::now();
    for i in 1..=scrapes {
        let (status, _) = e.get("/metrics");
        assert_eq!(status, 200);
        if i == 1000 {
            rss_at_1000 = e.status_kib("VmRSS:");
        }
        if i % 20_000 == 0 {
            println!("soak: scrape {i}: VmRSS {} KiB", e.status_kib("VmRSS:"));
        }
    }
    let rss_end = e.status_kib("VmRSS:");
    println!(
        "soak: {scrapes} scrapes in {:?}; VmRSS {rss_at_1000} KiB after 1000, {rss_end} KiB at the end: growth {} KiB; VmHWM {} KiB",
        started.elapsed(),
        rss_end as i64 - rss_at_1000 as i64,
        e.status_kib("VmHWM:")
    );
}

#[test]
#[ignore = "benchmark: cargo test --release --target x86_64-unknown-linux-musl --test bench -- --ignored idle_connections --nocapture"]
fn idle_connections() {
    let held: usize = 255;
    let head_bytes: usize = common::env_or("IDLE_HEAD_BYTES", 40);
    let (task, stats) = fargate_fixture();
    let endpoint = Endpoint::files(&task, &stats);
    let mut e = Subject::start(
        &endpoint.base,
        &["--web.disable-exporter-metrics", "--web.idle-timeout=5s"],
    );
    let address = format!("127.0.0.1:{}", e.port);
    let threads = |e: &Subject| e.status_kib("Threads:");
    let scrape_ms = |e: &mut Subject| {
        let mut ms: Vec<f64> = (0..200)
            .map(|_| {
                let t = Instant::now();
                assert_eq!(e.get("/metrics").0, 200);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        median(&mut ms)
    };
    println!(
        "idle_connections: before: VmRSS {} KiB, {} threads, scrape median {:.3} ms",
        e.status_kib("VmRSS:"),
        threads(&e),
        scrape_ms(&mut e)
    );
    let mut clients = Vec::with_capacity(held);
    for _ in 0..held {
        let mut s = TcpStream::connect(&address).expect("connects");
        let mut half = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
        half.resize(head_bytes.max(half.len()), b'a');
        s.write_all(&half).expect("half a request");
        clients.push(s);
    }
    std::thread::sleep(Duration::from_secs(1));
    println!(
        "idle_connections: {held} held with {head_bytes} bytes of a head each: VmRSS {} KiB, {} threads, scrape median {:.3} ms",
        e.status_kib("VmRSS:"),
        threads(&e),
        scrape_ms(&mut e)
    );
    // The timeout (5 s) closes them; tiny_http's spare threads end 5 s after they go idle.
    std::thread::sleep(Duration::from_secs(12));
    let closed = clients
        .iter_mut()
        .map(|c| {
            c.set_read_timeout(Some(Duration::from_millis(10))).is_ok()
                && c.read(&mut [0u8; 256]).is_ok()
        })
        .filter(|&closed| closed)
        .count();
    println!(
        "idle_connections: 12 s later, {closed} of {held} closed by the exporter: VmRSS {} KiB, {} threads, VmHWM {} KiB",
        e.status_kib("VmRSS:"),
        threads(&e),
        e.status_kib("VmHWM:")
    );
}

#[test]
#[ignore = "benchmark: cargo test --release --target x86_64-unknown-linux-musl --test bench -- --ignored instance --nocapture"]
fn instance() {
    use common::instance::{array, as_task};
    let tasks: usize = common::env_or("INSTANCE_TASKS", 100);
    let containers: usize = common::env_or("INSTANCE_CONTAINERS", 10);
    let scrapes: usize = common::env_or("INSTANCE_SCRAPES", 50);
    let dir = project_dir().join("fixtures/ec2-bridge-cgroupv1");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("fixture");
    let (task, stats) = (read("task.json"), read("stats.json"));
    let generated: Vec<(String, String)> = (0..tasks)
        .map(|n| as_task(&task, &stats, n, Some(containers)))
        .collect();
    let documents: Vec<String> = generated.iter().map(|t| t.0.clone()).collect();
    let maps: Vec<String> = generated.iter().map(|t| t.1.clone()).collect();
    let (tasks_body, stats_body) = (array(&documents), array(&maps));
    let endpoint = Endpoint::start();
    endpoint.set("/tasks", common::Behaviour::json(tasks_body.clone()));
    endpoint.set("/tasks/stats", common::Behaviour::json(stats_body.clone()));
    endpoint.set("/task", common::Behaviour::json(generated[0].0.clone()));
    endpoint.set(
        "/task/stats",
        common::Behaviour::json(generated[0].1.clone()),
    );
    for exporter_metrics in [false, true] {
        let mut flags = vec!["--ecs.scope=instance"];
        if !exporter_metrics {
            flags.push("--web.disable-exporter-metrics");
        }
        let mut e = Subject::start(&endpoint.base, &flags);
        if let Ok(encoding) = std::env::var("INSTANCE_ACCEPT_ENCODING") {
            e.request_headers = format!("Accept-Encoding: {encoding}\r\n");
        }
        let cpu_before = e.cpu_seconds();
        let mut times = Vec::with_capacity(scrapes);
        let mut answer = 0;
        for _ in 0..scrapes {
            let t = Instant::now();
            let (status, length) = e.get("/metrics");
            times.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(status, 200);
            answer = length;
        }
        let wire = e.wire;
        let cpu = (e.cpu_seconds() - cpu_before) / scrapes as f64;
        let slowest = times.iter().cloned().fold(0.0, f64::max);
        println!(
            "instance ({tasks} tasks x {containers} containers, exporter metrics {}): /tasks {} bytes, /tasks/stats {} bytes, answer {answer} bytes ({wire} on the wire); scrape median {:.1} ms, slowest {:.1} ms; {:.4} CPU-s per scrape; VmHWM {} KiB",
            if exporter_metrics { "on" } else { "off" },
            tasks_body.len(),
            stats_body.len(),
            median(&mut times),
            slowest,
            cpu,
            e.status_kib("VmHWM:"),
        );
    }
    // One sidecar in task scope on one of those tasks.
    let mut sidecar = Subject::start(&endpoint.base, &["--web.disable-exporter-metrics"]);
    let mut answer = 0;
    for _ in 0..scrapes {
        answer = sidecar.get("/metrics").1;
    }
    println!(
        "instance: one sidecar on one of those tasks: answer {answer} bytes, VmHWM {} KiB",
        sidecar.status_kib("VmHWM:")
    );
}

/// One figure of a round.
type Pick = fn(&Figures) -> f64;

/// One subject's figures from one round of `SIDE_SCRAPES` keep-alive scrapes.
struct Figures {
    cpu_per_1000: f64,
    median_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    hwm_kib: f64,
    start_ms: f64,
    wire_bytes: f64,
}

/// Prometheus 3's scrape request headers (scrape/scrape.go: `acceptHeader` with the default
/// protocols, `acceptEncodingHeader`), with `SIDE_ACCEPT_ENCODING` (default `gzip`; `identity`
/// is `enable_compression: false`).
fn prometheus_headers() -> String {
    let encoding = std::env::var("SIDE_ACCEPT_ENCODING").unwrap_or_else(|_| "gzip".into());
    format!(
        "Accept: application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2\r\n\
         Accept-Encoding: {encoding}\r\nUser-Agent: Prometheus/3.5.0\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n"
    )
}

/// Our flags for Go's 20 families alone (every collector group of ours off), so that both
/// exporters write the same series (but for our `ecs_up` and the build info's labels);
/// `SIDE_OUR_FAMILIES=1` keeps ours all on.
const GO_FAMILIES_ALONE: &[&str] = &[
    "--no-collector.container",
    "--no-collector.memory",
    "--no-collector.cpu",
    "--no-collector.storage",
    "--no-collector.pids",
    "--no-collector.container_network",
    "--no-collector.container_labels",
    "--no-collector.identity",
    "--no-collector.clock",
];

/// One round: `scrapes` keep-alive scrapes, `spacing` apart (0: back to back).
fn round(binary: Binary, metadata: &str, scrapes: usize, spacing: Duration) -> Figures {
    let mut flags = vec!["--web.disable-exporter-metrics"];
    if binary == Binary::Ours && std::env::var("SIDE_OUR_FAMILIES").as_deref() != Ok("1") {
        flags.extend_from_slice(GO_FAMILIES_ALONE);
    }
    let mut e = Subject::start_binary(binary, metadata, &flags);
    e.request_headers = prometheus_headers();
    let start_ms = e.first_health.as_secs_f64() * 1e3;
    // A few scrapes first, so that both clients' connections to the endpoint exist.
    for _ in 0..10 {
        assert_eq!(e.get("/metrics").0, 200);
    }
    let cpu_before = e.cpu_seconds();
    let mut latencies = Vec::with_capacity(scrapes);
    for _ in 0..scrapes {
        std::thread::sleep(spacing);
        let t = Instant::now();
        let (status, _) = e.get("/metrics");
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(status, 200);
    }
    Figures {
        cpu_per_1000: (e.cpu_seconds() - cpu_before) * 1000.0 / scrapes as f64,
        median_ms: median(&mut latencies.clone()),
        p95_ms: percentile(&mut latencies.clone(), 0.95),
        p99_ms: percentile(&mut latencies, 0.99),
        hwm_kib: e.status_kib("VmHWM:") as f64,
        start_ms,
        wire_bytes: e.wire as f64,
    }
}

/// The Go exporter and ours against the same fake endpoint with the same client, alternating,
/// in one run, with `--web.disable-exporter-metrics`, ours with Go's families alone
/// ([`GO_FAMILIES_ALONE`]), the client sending Prometheus's headers ([`prometheus_headers`]:
/// both compress): `SIDE_ROUNDS` (3) rounds per case. Bodies
/// are framed as the agent frames them (the fixture's go out chunked). The cases:
///
/// - back to back (`SIDE_SCRAPES`, 2000 scrapes), against an endpoint that takes new
///   connections at once, and one that takes 0.5 ms per new connection: Go keeps its
///   connections to the endpoint alive, ours opens new ones;
/// - as the agent and Prometheus meet: the endpoint closes a connection idle for 50 ms (the
///   agent's 5 s, scaled down) and scrapes come 100 ms apart (15 s, scaled down), so that every
///   scrape finds the last one's connections closed (`SIDE_SPACED_SCRAPES`, 300 scrapes).
///
/// Prints the medians over rounds and Go / ours.
#[test]
#[ignore = "benchmark: cargo test --release --target x86_64-unknown-linux-musl --test bench -- --ignored side_by_side --nocapture"]
fn side_by_side() {
    let rounds: usize = common::env_or("SIDE_ROUNDS", 3);
    let scrapes: usize = common::env_or("SIDE_SCRAPES", 2000);
    let go_runs = common::shared_dir_if_present().is_some_and(|s| s.join(GO_REFERENCE).is_file())
        && std::env::consts::ARCH == "x86_64";
    if !go_runs {
        println!("side_by_side: SKIPPED the Go side: ../shared/{GO_REFERENCE} cannot run here");
    }
    let spaced_scrapes: usize = common::env_or("SIDE_SPACED_SCRAPES", 300);
    let (task, stats) = fargate_fixture();
    let ms = Duration::from_millis;
    // (name, cost of a new connection, idle close, spacing, scrapes)
    let cases = [
        (
            "back to back, fast",
            Duration::ZERO,
            ms(5000),
            Duration::ZERO,
            scrapes,
        ),
        (
            "back to back, 0.5 ms per new connection",
            Duration::from_micros(500),
            ms(5000),
            Duration::ZERO,
            scrapes,
        ),
        (
            "as the agent: idle close 50 ms, scrapes 100 ms apart",
            Duration::ZERO,
            ms(50),
            ms(100),
            spaced_scrapes,
        ),
    ];
    for (name, cost, idle, spacing, scrapes) in cases {
        let endpoint = Endpoint::files(&task, &stats);
        endpoint.set_per_connection(cost);
        endpoint.set_idle_timeout(idle);
        let mut ours = Vec::new();
        let mut go = Vec::new();
        for _ in 0..rounds {
            ours.push(round(Binary::Ours, &endpoint.base, scrapes, spacing));
            if go_runs {
                go.push(round(Binary::Go, &endpoint.base, scrapes, spacing));
            }
        }
        let m = |runs: &[Figures], f: Pick| median(&mut runs.iter().map(f).collect::<Vec<_>>());
        let rows: [(&str, Pick); 7] = [
            ("bytes on the wire a scrape", |r| r.wire_bytes),
            ("CPU-s per 1000 scrapes", |r| r.cpu_per_1000),
            ("scrape median (ms)", |r| r.median_ms),
            ("scrape p95 (ms)", |r| r.p95_ms),
            ("scrape p99 (ms)", |r| r.p99_ms),
            ("VmHWM (KiB)", |r| r.hwm_kib),
            ("start to first /health (ms)", |r| r.start_ms),
        ];
        for (figure, f) in rows {
            let o = m(&ours, f);
            if go_runs {
                let g = m(&go, f);
                println!(
                    "side_by_side: {name} | {figure} | Go {g:.3} | ours {o:.3} | Go/ours {:.2}",
                    g / o
                );
            } else {
                println!("side_by_side: {name} | {figure} | ours {o:.3}");
            }
        }
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let i = ((values.len() as f64 - 1.0) * p).round() as usize;
    values.get(i).copied().unwrap_or(f64::NAN)
}

/// One run: 5000 sequential keep-alive scrapes.
struct Run {
    hwm_kib: u64,
    rss_growth_kib: i64,
    cpu_per_1000: f64,
    median_ms: f64,
    p99_ms: f64,
    start_ms: f64,
}

fn run(metadata: &str, exporter_metrics: bool) -> Run {
    let flags: &[&str] = if exporter_metrics {
        &[]
    } else {
        &["--web.disable-exporter-metrics"]
    };
    let mut e = Subject::start(metadata, flags);
    let start_ms = e.first_health.as_secs_f64() * 1e3;
    let cpu_before = e.cpu_seconds();
    let mut latencies = Vec::with_capacity(5000);
    let mut rss_at_1000 = 0;
    for i in 1..=5000 {
        let t = Instant::now();
        let (status, _) = e.get("/metrics");
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(status, 200);
        if i == 1000 {
            rss_at_1000 = e.status_kib("VmRSS:");
        }
    }
    let cpu = e.cpu_seconds() - cpu_before;
    let mut first_2000 = latencies[..2000].to_vec();
    Run {
        hwm_kib: e.status_kib("VmHWM:"),
        rss_growth_kib: e.status_kib("VmRSS:") as i64 - rss_at_1000 as i64,
        cpu_per_1000: cpu / 5.0,
        median_ms: median(&mut first_2000),
        p99_ms: percentile(&mut first_2000, 0.99),
        start_ms,
    }
}

/// docs/footprint.md's figures, medians of 3 runs: VmHWM after 5000 scrapes, RSS growth from
/// scrape 1000 to 5000, CPU seconds per 1000 scrapes, scrape median and p99 (first 2000), start
/// to the first /health answer; and the fetch floor: this client GETting /task and /task/stats
/// from the same endpoint over fresh connections.
#[test]
#[ignore = "benchmark: cargo test --release --target x86_64-unknown-linux-musl --test bench -- --ignored footprint --nocapture"]
fn footprint() {
    let (task, stats) = fargate_fixture();
    let endpoint = Endpoint::files(&task, &stats);
    for exporter_metrics in [false, true] {
        let runs: Vec<Run> = (0..3)
            .map(|_| run(&endpoint.base, exporter_metrics))
            .collect();
        let m = |f: &dyn Fn(&Run) -> f64| median(&mut runs.iter().map(f).collect::<Vec<_>>());
        println!(
            "footprint (exporter metrics {}): VmHWM {:.0} KiB, RSS growth {:.0} KiB, {:.4} CPU-s per 1000 scrapes, scrape median {:.3} ms, p99 {:.3} ms, start to /health {:.2} ms",
            if exporter_metrics { "on" } else { "off" },
            m(&|r| r.hwm_kib as f64),
            m(&|r| r.rss_growth_kib as f64),
            m(&|r| r.cpu_per_1000),
            m(&|r| r.median_ms),
            m(&|r| r.p99_ms),
            m(&|r| r.start_ms),
        );
    }
    // The same documents from a directory: the exporter's own share, without the network client.
    let dir = common::TempDir::new("bench");
    let read = |p: &Path| std::fs::read_to_string(p).expect("fixture");
    dir.documents(&read(&task), &read(&stats));
    let mut cpu: Vec<f64> = (0..3)
        .map(|_| run(dir.0.to_str().expect("UTF-8"), false).cpu_per_1000)
        .collect();
    println!(
        "footprint: the same documents read from a directory: {:.4} CPU-s per 1000 scrapes",
        median(&mut cpu)
    );
    let address = endpoint
        .base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned();
    let fetch = |path: &str| {
        let mut s = TcpStream::connect(&address).expect("connects");
        s.set_nodelay(true).expect("nodelay");
        write!(
            s,
            "GET /v4/fake{path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut body = Vec::new();
        s.read_to_end(&mut body).expect("response");
    };
    let mut floor: Vec<f64> = (0..2000)
        .map(|_| {
            let t = Instant::now();
            fetch("/task");
            fetch("/task/stats");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    println!(
        "footprint: fetch floor (GET /task + /task/stats, fresh connections) median {:.3} ms",
        median(&mut floor)
    );
}

/// decode -> collect -> write -> gzip `PIPELINE_ITERATIONS` times (default 1000) on the Fargate
/// fixture, in process, for instruction counts: run it under callgrind with 0 and with N iterations and
/// divide the difference by N (`.ci/instructions.sh` does that).
#[test]
#[ignore = "benchmark: cargo test --release --target x86_64-unknown-linux-musl --test bench -- --ignored pipeline --nocapture"]
fn pipeline() {
    use ecs_exporter::collect::{Options, Scrape};
    use ecs_exporter::tmds::Scope;
    use ecs_exporter::{scrape, version};
    let iterations: usize = common::env_or("PIPELINE_ITERATIONS", 1000);
    let (task, stats) = fargate_fixture();
    let task = std::fs::read_to_string(task).expect("task");
    let stats = std::fs::read_to_string(stats).expect("stats");
    let options = Options::default();
    let mut out = ecs_exporter::exposition::Exposition::default();
    // The deflate level (`PIPELINE_GZIP_LEVEL`, default the exporter's; "none" leaves gzip
    // out), for docs/footprint.md's table of levels.
    let level = match std::env::var("PIPELINE_GZIP_LEVEL").ok().as_deref() {
        Some("none") => None,
        Some(l) => Some(l.parse().expect("a level, 0 to 10")),
        None => Some(ecs_exporter::gzip::LEVEL),
    };
    let (mut total, mut compressed) = (0, 0);
    // As the server keeps them: one compressor's state, reused.
    let pool = ecs_exporter::gzip::Pool::default();
    for _ in 0..iterations {
        let tasks = scrape::decode_tasks(Scope::Task, task.clone(), &options.labels)
            .ok()
            .map(|d| d.document);
        let stats = tasks.as_deref().and_then(|tasks| {
            scrape::decode_stats(Scope::Task, stats.clone(), tasks)
                .ok()
                .map(|d| d.document)
        });
        let input = Scrape {
            tasks: tasks.as_deref(),
            stats: stats.as_deref(),
            scope: Scope::Task,
            exporter: None,
            build: &version::BUILD,
            options: &options,
        };
        scrape::render(&input, &mut out).expect("within the answer limit");
        total += out.len();
        if let Some(level) = level {
            let mut gz = ecs_exporter::gzip::Gzip::with_level(out.take(), &pool, level);
            compressed += std::io::copy(&mut gz, &mut std::io::sink()).expect("compresses");
        }
    }
    println!(
        "pipeline: {iterations} iterations, {total} bytes written, {compressed} bytes gzipped at level {level:?}"
    );
}

/// 256 idle keep-alive connections (each has had one answer), as many as the default
/// `--web.max-connections`, beside the Go exporter: what they cost, and a fresh client's
/// `/health` and `/metrics` meanwhile (ours closes the oldest idle one to admit it).
#[test]
#[ignore = "benchmark: cargo test --release --target x86_64-unknown-linux-musl --test bench -- --ignored keep_alive_connections --nocapture"]
fn keep_alive_connections() {
    let held: usize = 256;
    let (task, stats) = fargate_fixture();
    let endpoint = Endpoint::files(&task, &stats);
    let mut binaries = vec![Binary::Ours];
    if common::shared_dir_if_present().is_some() {
        binaries.push(Binary::Go);
    }
    for binary in binaries {
        let e = Subject::start_binary(binary, &endpoint.base, &[]);
        let address = format!("127.0.0.1:{}", e.port);
        let fds = |e: &Subject| {
            std::fs::read_dir(format!("/proc/{}/fd", e.child.id()))
                .map(|d| d.count())
                .unwrap_or(0)
        };
        let mut clients = Vec::with_capacity(held);
        for _ in 0..held {
            let mut s = TcpStream::connect(&address).expect("connects");
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("request");
            let mut answer = [0u8; 512];
            assert!(s.read(&mut answer).expect("answer") > 0);
            clients.push(s);
        }
        std::thread::sleep(Duration::from_millis(500));
        let fresh = |path: &str| {
            let started = Instant::now();
            let mut s = TcpStream::connect(&address).expect("connects");
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            s.write_all(request.as_bytes()).expect("request");
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            let ok = answer.starts_with(b"HTTP/1.1 200");
            (ok, started.elapsed().as_secs_f64() * 1e3)
        };
        let (health_ok, health_ms) = fresh("/health");
        let (metrics_ok, metrics_ms) = fresh("/metrics");
        let name = if binary == Binary::Go { "go" } else { "ours" };
        println!(
            "keep_alive_connections {name}: {held} held: {} threads, {} descriptors, VmHWM {} KiB; \
             fresh /health 200: {health_ok} in {health_ms:.2} ms, /metrics 200: {metrics_ok} in {metrics_ms:.2} ms",
            e.status_kib("Threads:"),
            fds(&e),
            e.status_kib("VmHWM:"),
        );
    }
}

/// Starts `command` listening on `127.0.0.1:0`: the child, and the `host:port` its "Listening on"
/// line gives (both exporters print it once listening). Its stderr is drained by a thread.
fn listening(mut command: std::process::Command) -> (Child, String) {
    let mut child = command
        .arg("--web.listen-address=127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let (said, addresses) = common::read_until(&mut stderr, "Listening on");
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let address = addresses
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("{said}"));
    (child, address)
}

/// The exporter at `binary` (ours when `None`), scraping `metadata` with `extra` flags.
fn start_at(binary: Option<&str>, metadata: &str, extra: &[&str]) -> (Child, String) {
    let mut command = match binary {
        Some(path) => std::process::Command::new(path),
        None => exporter_command(),
    };
    command
        .arg(format!("--ecs.metadata-uri={metadata}"))
        .args(extra);
    listening(command)
}

/// One scrape on a connection of its own: the status (0 when the connection ended without one)
/// and how long the answer took.
fn scrape_once(address: &str) -> (u16, Duration) {
    let started = Instant::now();
    let status = (|| -> std::io::Result<u16> {
        let mut s = TcpStream::connect(address)?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        let text = String::from_utf8_lossy(&answer);
        Ok(text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    })()
    .unwrap_or(0);
    (status, started.elapsed())
}

/// A metadata endpoint that accepts and never answers (the agent under load, a task stopping):
/// `SLOW_AGENT_CLIENTS` (default 10 and then 40) scrapes sent at once with the default
/// `--ecs.timeout=3s`, each client's answer time and the fetches the endpoint saw; then SIGTERM
/// with one scrape in hand and 39 waiting, with `--ecs.timeout=60s`: time to exit, exit code and
/// what the waiting scrapes got. `SLOW_AGENT_BINARY` runs another build (an earlier commit's)
/// for a before-and-after:
///
/// ```sh
/// cargo test --release --target x86_64-unknown-linux-musl --test bench -- --ignored slow_agent --nocapture
/// ```
#[test]
#[ignore = "benchmark: cargo test --release --target x86_64-unknown-linux-musl --test bench -- --ignored slow_agent --nocapture"]
fn slow_agent() {
    let binary = std::env::var("SLOW_AGENT_BINARY").ok();
    let binary = binary.as_deref();
    let rounds: Vec<usize> = std::env::var("SLOW_AGENT_CLIENTS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 40]);
    let endpoint = Endpoint::start();
    endpoint.set("/task", common::Behaviour::Stall);
    endpoint.set("/task/stats", common::Behaviour::Stall);
    println!("slow agent: {}", binary.unwrap_or("this build"));
    for clients in rounds {
        let (mut child, address) = start_at(binary, &endpoint.base, &[]);
        let _ = endpoint.take_requests();
        let started = Instant::now();
        let scrapes: Vec<_> = (0..clients)
            .map(|_| {
                let address = address.clone();
                std::thread::spawn(move || scrape_once(&address))
            })
            .collect();
        let got: Vec<(u16, Duration)> = scrapes
            .into_iter()
            .map(|s| s.join().expect("joins"))
            .collect();
        let all = started.elapsed();
        let (paths, most) = endpoint.take_requests();
        let fetches = paths.iter().filter(|p| p.as_str() == "/task").count();
        let mut times: Vec<f64> = got.iter().map(|g| g.1.as_secs_f64()).collect();
        let mut statuses: Vec<u16> = got.iter().map(|g| g.0).collect();
        statuses.sort_unstable();
        statuses.dedup();
        println!(
            "  {clients} scrapes at once: slowest answer {:.2} s (median {:.2} s, all done in \
             {:.2} s), statuses {statuses:?}; /task fetched {fetches} times, at most {most} \
             requests at the endpoint at once",
            percentile(&mut times, 1.0),
            median(&mut times),
            all.as_secs_f64(),
        );
        let _ = child.kill();
        let _ = child.wait();
    }
    // SIGTERM with a fetch in hand and 39 scrapes waiting.
    let (mut child, address) = start_at(binary, &endpoint.base, &["--ecs.timeout=60s"]);
    let _ = endpoint.take_requests();
    let first = {
        let address = address.clone();
        std::thread::spawn(move || scrape_once(&address))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while endpoint.hits() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let waiting: Vec<_> = (0..39)
        .map(|_| {
            let address = address.clone();
            std::thread::spawn(move || scrape_once(&address))
        })
        .collect();
    // Time for the 39 requests to be read (the figure is the exit's, not theirs).
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().expect("exits");
    let exited = asked.elapsed();
    let mut got: Vec<u16> = std::iter::once(first)
        .chain(waiting)
        .map(|s| s.join().expect("joins").0)
        .collect();
    got.sort_unstable();
    let count = |code: u16| got.iter().filter(|&&g| g == code).count();
    println!(
        "  SIGTERM with a fetch in flight (--ecs.timeout=60s): exited after {:.2} s with {status}; \
         of 40 scrapes {} got 503, {} got 200, {} no answer",
        exited.as_secs_f64(),
        count(503),
        count(200),
        count(0),
    );
}
