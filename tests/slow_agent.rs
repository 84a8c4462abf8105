//! A metadata endpoint that takes seconds to answer, with the queue of scrapes full: the health
//! check and SIGTERM never wait for it.

mod common;

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::raw::{Conn, client, wait_until_read};
use common::{Behaviour, Endpoint, Exporter, ms, project_dir, run};

/// `--web.max-requests`' default: this many scrapes in flight, one in hand and the rest queued.
const QUEUED: usize = 40;

/// The Fargate fixture with `/task` answering after `delay`.
fn slow_endpoint(delay: Duration) -> Endpoint {
    let endpoint = Endpoint::fixture("fargate");
    let task = Behaviour::file(&project_dir().join("fixtures/fargate/task.json"));
    endpoint.set("/task", task.delayed(delay));
    endpoint
}

/// The exporter, started, scraping `endpoint`; and its `host:port`.
fn start(endpoint: &Endpoint) -> (Exporter, String) {
    let e = Exporter::start(&["--ecs.metadata-uri", &endpoint.base, "--ecs.timeout=10s"]);
    let address = e.base.trim_start_matches("http://").to_owned();
    (e, address)
}

/// `QUEUED` scrapes, each on its own connection; returns once the first is in hand (its
/// `/task` request made) and the exporter has read every one's request (taken it in, queued).
/// Each client thread joins to the status of its answer, or to nothing when the exporter
/// closed the connection first.
fn fill_the_queue(address: &str, endpoint: &Endpoint) -> Vec<JoinHandle<Option<u16>>> {
    let mut first = Conn::open(address, ms(120_000));
    first.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    endpoint.wait_for_a_scrape();
    let mut conns = vec![first];
    conns.extend((1..QUEUED).map(|_| {
        let mut c = Conn::open(address, ms(120_000));
        c.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        c
    }));
    wait_until_read(conns.iter().map(|c| &c.stream), ms(10_000));
    conns
        .into_iter()
        .map(|mut c| {
            client(move || {
                c.answer()
                    .map(|a| a.status)
                    .map_err(|end| std::io::Error::other(format!("{end:?}")))
            })
        })
        .collect()
}

#[test]
fn health_answers_at_once_with_the_scrape_queue_full() {
    let endpoint = slow_endpoint(Duration::from_secs(4));
    let (_exporter, address) = start(&endpoint);
    let scrapes = fill_the_queue(&address, &endpoint);
    let bound = ms(100);

    let asked = Instant::now();
    let health = minreq::get(format!("http://{address}/health"))
        .with_timeout(ms(10_000).as_secs())
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
            .with_timeout(ms(10_000).as_secs())
            .send()
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(r.status_code, status, "{path}");
        assert!(asked.elapsed() < bound, "{path} took {:?}", asked.elapsed());
    }
    drop(scrapes);
}

#[test]
fn sigterm_answers_queued_scrapes_503_at_once_without_fetching() {
    // Long enough that the scrape in hand still waits for /task when SIGTERM comes, after the
    // queue has filled (tens of milliseconds natively).
    let delay = ms(1500);
    let endpoint = slow_endpoint(delay);
    let (mut exporter, address) = start(&endpoint);
    let scrapes = fill_the_queue(&address, &endpoint);
    // The scrape in hand asked for /task and waits for it; SIGTERM now.
    let Some((status, took)) = exporter.terminate(delay + ms(30_000)) else {
        panic!("still running long after SIGTERM")
    };
    assert!(status.success(), "{status:?}");
    // At most the scrape in hand's remaining time (under `delay`) and 1 s more.
    assert!(
        took < delay + ms(1000),
        "exited {took:?} after SIGTERM with {QUEUED} scrapes queued"
    );
    // A connection the exiting process closed before its answer is fine too.
    let answered: Vec<u16> = scrapes
        .into_iter()
        .filter_map(|scrape| scrape.join().expect("joins"))
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
