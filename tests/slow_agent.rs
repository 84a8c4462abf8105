//! A metadata endpoint that takes seconds to answer, with the queue of scrapes full: the health
//! check and SIGTERM never wait for it.

mod common;

use std::time::{Duration, Instant};

use common::{Behaviour, ChildGuard, Endpoint, emulated, exporter_command, project_dir, run};

/// `--web.max-requests`' default: this many scrapes in flight, one in hand and the rest queued.
const QUEUED: usize = 40;

/// The Fargate fixture with `/task` answering after `delay`.
fn slow_endpoint(delay: Duration) -> Endpoint {
    let endpoint = Endpoint::fixture("fargate");
    let task = Behaviour::file(&project_dir().join("fixtures/fargate/task.json"));
    endpoint.set("/task", task.delayed(delay));
    endpoint
}

/// The exporter on a free port, started and answering `/health`.
fn start(endpoint: &Endpoint) -> (ChildGuard, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let address = format!("127.0.0.1:{port}");
    let child = exporter_command()
        .args([
            &format!("--web.listen-address={address}"),
            "--ecs.metadata-uri",
            &endpoint.base,
            "--ecs.timeout=10s",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let child = ChildGuard(child);
    let started = Instant::now();
    while minreq::get(format!("http://{address}/health"))
        .with_timeout(1)
        .send()
        .is_err()
    {
        assert!(started.elapsed() < Duration::from_secs(10), "did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, address)
}

/// `QUEUED` scrapes at once; returns once the first is in hand (its `/task` request made) and
/// the others have had time to queue. Each thread joins to the status or the error.
fn fill_the_queue(
    address: &str,
    endpoint: &Endpoint,
) -> Vec<std::thread::JoinHandle<Result<u16, minreq::Error>>> {
    let scrapes = (0..QUEUED)
        .map(|_| {
            let url = format!("http://{address}/metrics");
            std::thread::spawn(move || {
                minreq::get(url)
                    .with_timeout(120)
                    .send()
                    .map(|r| r.status_code)
            })
        })
        .collect();
    endpoint.wait_for_a_scrape();
    std::thread::sleep(Duration::from_millis(if emulated() { 2000 } else { 500 }));
    scrapes
}

#[test]
fn health_answers_at_once_with_the_scrape_queue_full() {
    let endpoint = slow_endpoint(Duration::from_secs(4));
    let (_exporter, address) = start(&endpoint);
    let scrapes = fill_the_queue(&address, &endpoint);
    let bound = Duration::from_millis(if emulated() { 1000 } else { 100 });

    let asked = Instant::now();
    let health = minreq::get(format!("http://{address}/health"))
        .with_timeout(10)
        .send()
        .expect("answers");
    let took = asked.elapsed();
    assert_eq!(health.status_code, 200);
    assert!(
        took < bound,
        "/health took {took:?} behind {QUEUED} slow scrapes"
    );

    let asked = Instant::now();
    let (code, out, _) = run(
        &["--health-check", &format!("--web.listen-address={address}")],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    let took = asked.elapsed();
    assert!(took < bound * 5, "--health-check took {took:?}");

    // The landing page and 404s do not wait either; the 41st scrape is turned away at once.
    for (path, status) in [("/", 200), ("/nope", 404), ("/metrics", 503)] {
        let asked = Instant::now();
        let r = minreq::get(format!("http://{address}{path}"))
            .with_timeout(10)
            .send()
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(r.status_code, status, "{path}");
        assert!(asked.elapsed() < bound, "{path} took {:?}", asked.elapsed());
    }
    drop(scrapes);
}

#[test]
fn sigterm_answers_queued_scrapes_503_at_once_without_fetching() {
    // Longer than fill_the_queue's wait after the first request, so that the scrape in hand is
    // still waiting for /task when SIGTERM comes (under emulation that wait is 2 s).
    let delay = Duration::from_secs(if emulated() { 6 } else { 2 });
    let endpoint = slow_endpoint(delay);
    let (mut exporter, address) = start(&endpoint);
    let scrapes = fill_the_queue(&address, &endpoint);
    // The scrape in hand asked for /task and waits for it; SIGTERM now.
    let asked = Instant::now();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(exporter.0.id() as libc::pid_t, libc::SIGTERM) };
    let status = loop {
        if let Some(status) = exporter.0.try_wait().expect("waits") {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(30),
            "still running 30 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = asked.elapsed();
    assert!(status.success(), "{status:?}");
    // At most the scrape in hand's remaining time (under `delay`) and 1 s more.
    let slack = if emulated() { 3 } else { 1 };
    assert!(
        took < delay + Duration::from_secs(slack),
        "exited {took:?} after SIGTERM with {QUEUED} scrapes queued"
    );
    // A connection the exiting process closed before its answer is fine too.
    let answered: Vec<u16> = scrapes
        .into_iter()
        .filter_map(|scrape| scrape.join().expect("joins").ok())
        .collect();
    assert_eq!(
        answered.iter().filter(|&&s| s == 200).count(),
        1,
        "only the scrape in hand is answered 200: {answered:?}"
    );
    assert!(
        answered.iter().all(|&s| s == 200 || s == 503),
        "{answered:?}"
    );
    // The scrape in hand's two documents, and nothing for the queued ones.
    assert!(
        endpoint.hits() <= 2,
        "{} metadata requests",
        endpoint.hits()
    );
}
