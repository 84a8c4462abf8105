//! A metadata endpoint that takes seconds to answer, or never does, with the queue of scrapes
//! full: the health check and SIGTERM never wait for it, every waiting scrape shares the one
//! fetch in flight, and a scrape whose client has gone costs no fetch.

mod common;

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::raw::{Conn, client, wait_until_read};
use common::{
    Behaviour, Endpoint, Exporter, ms, parse_exposition, project_dir, run, value, wait_until,
};

/// `--web.max-requests`' default: this many scrapes in flight, one in hand and the rest queued.
const QUEUED: usize = 40;

/// The Fargate fixture with `/task` answering after `delay`.
fn slow_endpoint(delay: Duration) -> Endpoint {
    let endpoint = Endpoint::fixture("fargate");
    let task = Behaviour::file(&project_dir().join("fixtures/fargate/task.json"));
    endpoint.set("/task", task.delayed(delay));
    endpoint
}

/// The exporter, started, scraping `endpoint` with `flags`; and its `host:port`.
fn start_with(endpoint: &Endpoint, flags: &[&str]) -> (Exporter, String) {
    let mut args = vec!["--ecs.metadata-uri", &endpoint.base];
    args.extend_from_slice(flags);
    let e = Exporter::start(&args);
    let address = e.base.trim_start_matches("http://").to_owned();
    (e, address)
}

fn start(endpoint: &Endpoint) -> (Exporter, String) {
    start_with(endpoint, &["--ecs.timeout=10s"])
}

/// What a scrape's client got: the status, and `ecs_up` where the answer was an exposition.
type Got = (u16, Option<f64>);

/// `QUEUED` scrapes, each on its own connection; returns once the first is in hand (its
/// `/task` request made) and the exporter has read every one's request (taken it in, queued).
/// Each client thread joins to what its answer was, or to nothing when the exporter closed the
/// connection first.
fn fill_the_queue(address: &str, endpoint: &Endpoint) -> Vec<JoinHandle<Option<Got>>> {
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
                let a = c
                    .answer()
                    .map_err(|end| std::io::Error::other(format!("{end:?}")))?;
                let up = (a.status == 200).then(|| {
                    let text = String::from_utf8_lossy(&a.body);
                    value(&parse_exposition(&text), "ecs_up", &[]).unwrap_or(-1.0)
                });
                Ok((a.status, up))
            })
        })
        .collect()
}

/// What every client of [`fill_the_queue`] got, in the order they asked.
fn answers(scrapes: Vec<JoinHandle<Option<Got>>>) -> Vec<Option<Got>> {
    scrapes
        .into_iter()
        .map(|scrape| scrape.join().expect("joins"))
        .collect()
}

#[test]
fn health_answers_at_once_with_the_scrape_queue_full() {
    // Long enough for every check below to come while the scrape in hand waits.
    let endpoint = slow_endpoint(ms(4000));
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

/// Forty scrapes at once against an agent that never answers: one fetch, whose failure every
/// one of them reports, all within about one timeout (each used to wait for every fetch ahead
/// of it: the 40th for 40 timeouts).
#[test]
fn scrapes_waiting_behind_a_hung_agent_share_its_one_fetch() {
    let endpoint = Endpoint::fixture("fargate");
    endpoint.set("/task", Behaviour::Stall);
    let timeout = Duration::from_secs(1);
    let (_exporter, address) = start_with(&endpoint, &["--ecs.timeout=1s"]);
    let asked = Instant::now();
    let got = answers(fill_the_queue(&address, &endpoint));
    let took = asked.elapsed();
    assert!(
        got.iter().all(|g| *g == Some((200, Some(0.0)))),
        "every scrape answered 200 with ecs_up 0: {got:?}"
    );
    assert_eq!(endpoint.hits(), 1, "one fetch of /task for all {QUEUED}");
    assert!(
        took < timeout + ms(2000),
        "the last of {QUEUED} scrapes answered {took:?} after the first asked (timeout {timeout:?})"
    );
}

/// A scrape whose client hung up before its turn: no fetch for it. (The exporter is stopped
/// while the client asks and hangs up, so that both have happened by the time it looks.)
#[test]
fn a_scrape_whose_client_has_gone_costs_no_fetch() {
    let endpoint = Endpoint::fixture("fargate");
    let (mut e, address) = start_with(&endpoint, &[]);
    let pid = e.pid();
    assert_eq!(e.get("/health").status_code, 200);
    common::raw::wait_for_sockets(pid, 1, ms(5000));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
    let mut gone = Conn::open(&address, ms(5000));
    gone.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    drop(gone);
    // SAFETY: as above.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
    // Its connection taken, handled and ended: the listener alone again.
    wait_until("the gone client's request handled", ms(10_000), || {
        common::raw::sockets(pid).is_some_and(|s| s.len() == 1) && e.alive()
    });
    assert_eq!(endpoint.hits(), 0, "a fetch for a client that had gone");
    let series = parse_exposition(&e.metrics());
    assert_eq!(value(&series, "ecs_up", &[]), Some(1.0));
    assert_eq!(endpoint.hits(), 2, "the next scrape fetches as usual");
}

/// SIGTERM while the agent holds the fetch in hand (a 60 s timeout, past ECS's 30 s before
/// SIGKILL): the fetch is abandoned, every waiting scrape gets 503 at once, exit 0 within a
/// second, and nothing more is fetched.
#[test]
fn sigterm_abandons_the_fetch_in_hand_and_answers_every_waiting_scrape_503() {
    let endpoint = Endpoint::fixture("fargate");
    endpoint.set("/task", Behaviour::Stall);
    let (mut exporter, address) = start_with(&endpoint, &["--ecs.timeout=60s"]);
    let scrapes = fill_the_queue(&address, &endpoint);
    let Some((status, took)) = exporter.terminate(ms(30_000)) else {
        panic!("still running long after SIGTERM")
    };
    assert!(status.success(), "{status:?}");
    assert!(
        took < ms(1000),
        "exited {took:?} after SIGTERM with a fetch in hand and {QUEUED} scrapes waiting"
    );
    // A connection the exiting process closed before its answer is fine too.
    let got = answers(scrapes);
    assert!(
        got.iter().all(|g| matches!(g, None | Some((503, None)))),
        "{got:?}"
    );
    assert!(
        got.iter().filter(|g| g.is_some()).count() >= QUEUED / 2,
        "most waiting scrapes are answered 503 before the exit: {got:?}"
    );
    assert_eq!(endpoint.hits(), 1, "the one fetch in hand, nothing more");
}

/// Scrapes one after another against an agent that never answers: each fetch ends at its
/// deadline with its connection closed, so the agent never has two of the exporter's requests
/// at once (minreq ran each request on a thread it abandoned at the deadline, whose connection
/// stayed open until its own read timed out, overlapping the next by up to 0.25 s;
/// vendor/minreq/PATCHES.md 2).
#[test]
fn a_fetch_that_times_out_is_closed_before_the_next_begins() {
    let endpoint = Endpoint::fixture("fargate");
    endpoint.set("/task", Behaviour::Stall);
    let (e, _) = start_with(&endpoint, &["--ecs.timeout=1s"]);
    let _ = endpoint.take_requests();
    for _ in 0..3 {
        let series = parse_exposition(&e.metrics());
        assert_eq!(value(&series, "ecs_up", &[]), Some(0.0));
    }
    let (paths, most) = endpoint.take_requests();
    assert_eq!(paths, ["/task", "/task", "/task"], "one fetch a scrape");
    assert_eq!(most, 1, "requests at the endpoint at once");
}
