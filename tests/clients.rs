//! Hostile and numerous HTTP clients on the exporter's port, and the metadata request budget.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::raw::{wait_for_sockets, wait_until_read};
use common::{Endpoint, Exporter, bound, emulated, fixture, ms, parse_exposition, value, vm_hwm};

fn connect(e: &Exporter) -> TcpStream {
    let stream = TcpStream::connect(e.base.trim_start_matches("http://")).expect("connects");
    stream
        .set_read_timeout(Some(bound(Duration::from_secs(10))))
        .expect("timeout");
    stream
}

/// Sends raw bytes and returns what comes back before the server closes (or 10 s pass).
fn raw(e: &Exporter, request: &[u8]) -> String {
    let mut stream = connect(e);
    let _ = stream.write_all(request);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn abuse_does_not_stop_well_behaved_scrapes() {
    let e = Exporter::start(&["--ecs.metadata-uri", &fixture("fargate")]);

    // 200 connections that send half a request and wait.
    let held: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = connect(&e);
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .expect("half a request");
            s
        })
        .collect();
    let started = Instant::now();
    let series = parse_exposition(&e.metrics());
    let took = started.elapsed();
    // Held, it would wait for the idle timeout (120 s); the bound is far from that and far
    // above a scrape's milliseconds, so that a loaded machine does not fail it.
    let limit = ms(5000);
    assert!(
        took < limit,
        "a scrape took {took:?} with 200 half-open connections held"
    );
    assert_eq!(value(&series, "ecs_up", &[]), Some(1.0));

    // A 1 MiB header, invalid request lines, unknown methods, a very long path.
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let answer = raw(&e, big.as_bytes());
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 "),
        "{}",
        &answer[..answer.len().min(200)]
    );
    for junk in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nNo-Colon-Header\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    ] {
        let answer = raw(&e, junk);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1."),
            "{junk:?}: {answer}"
        );
    }
    let brew = raw(
        &e,
        b"BREW /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(brew.starts_with("HTTP/1.1 405"), "{brew}");
    let long = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "p".repeat(1 << 20)
    );
    let answer = raw(&e, long.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{}",
        &answer[..answer.len().min(200)]
    );

    // 40 clients scraping at once, while the half-open connections are still held.
    let base = e.base.clone();
    let scrapers: Vec<_> = (0..40)
        .map(|_| {
            let url = format!("{base}/metrics");
            std::thread::spawn(move || {
                minreq::get(url)
                    .with_timeout(common::ms(30_000).as_secs())
                    .send()
                    .map(|r| (r.status_code, r.as_str().map(str::to_owned)))
            })
        })
        .collect();
    for scraper in scrapers {
        let (status, body) = scraper
            .join()
            .expect("joins")
            .expect("every concurrent scrape is answered");
        assert_eq!(status, 200);
        let series = parse_exposition(&body.expect("UTF-8"));
        assert_eq!(value(&series, "ecs_up", &[]), Some(1.0));
    }
    assert_eq!(e.get("/health").status_code, 200);
    if !emulated() {
        eprintln!(
            "clients: VmRSS {} bytes with 200 connections held",
            common::vm_rss(e.pid()).unwrap_or(0)
        );
    }
    drop(held);
    if !emulated() {
        let peak = vm_hwm(e.pid()).expect("VmHWM");
        eprintln!("clients: VmHWM {peak} bytes after the abuse");
        assert!(
            peak < 32 << 20,
            "peak resident memory {peak} bytes under abuse"
        );
    }
}

#[test]
fn two_requests_per_scrape_and_coalescing_within_the_interval() {
    let endpoint = Endpoint::fixture("fargate");
    let uri = format!("--ecs.metadata-uri={}", endpoint.base);
    let plain = Exporter::start(&[&uri]);
    for _ in 0..5 {
        plain.metrics();
    }
    assert_eq!(
        endpoint.hits(),
        10,
        "two metadata requests per scrape, never more"
    );
    drop(plain);

    // Long enough for the five scrapes below to come within it, however slow the machine.
    let interval = bound(Duration::from_secs(2));
    let coalescing = Exporter::start(&[
        &uri,
        &format!("--ecs.min-refresh-interval={}s", interval.as_secs()),
        "--web.disable-exporter-metrics",
    ]);
    let first = coalescing.metrics();
    for _ in 0..4 {
        assert_eq!(
            coalescing.metrics(),
            first,
            "the reused fetch gives the same answer"
        );
    }
    assert_eq!(
        endpoint.hits(),
        12,
        "scrapes within the interval reuse the last fetch"
    );
    // Not a wait for an event: what is tested is that the interval passes.
    std::thread::sleep(interval + Duration::from_millis(100));
    coalescing.metrics();
    assert_eq!(
        endpoint.hits(),
        14,
        "after the interval the next scrape fetches again"
    );
}

/// Sends `head` in pieces (stopping when the exporter closes) and returns its answer.
fn send_head(e: &Exporter, head: &[u8]) -> String {
    let mut stream = connect(e);
    for piece in head.chunks(64 * 1024) {
        if stream.write_all(piece).is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_request_head_past_16_kib_gets_431_and_costs_nothing() {
    let e = Exporter::start(&["--ecs.metadata-uri", &fixture("fargate")]);
    // A head of exactly 16 KiB is read; one byte more is not. (`Connection: close`, so that
    // the answer ends with the connection rather than at the client's read timeout.)
    let head = |len: usize| {
        let mut h = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ".to_vec();
        h.resize(len - 4, b'a');
        h.extend_from_slice(b"\r\n\r\n");
        h
    };
    assert!(send_head(&e, &head(16 * 1024)).starts_with("HTTP/1.1 200 "));
    let over = send_head(&e, &head(16 * 1024 + 1));
    assert!(over.starts_with("HTTP/1.1 431 "), "{over}");
    // One header line of 16 MiB, sent as fast as the exporter reads.
    let mut huge = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
    huge.resize(16 << 20, b'a');
    let answer = send_head(&e, &huge);
    assert!(
        answer.starts_with("HTTP/1.1 431 "),
        "{}",
        &answer[..answer.len().min(100)]
    );
    assert_eq!(e.get("/health").status_code, 200);
    if !emulated() {
        let peak = vm_hwm(e.pid()).expect("VmHWM");
        eprintln!(
            "clients: VmHWM {} KiB after a 16 MiB header line",
            peak >> 10
        );
        assert!(peak < 8 << 20, "peak resident memory {peak} bytes");
    }
}

/// `GET /health` on a fresh connection: the whole answer, up to the server's close.
fn health_once(e: &Exporter) -> String {
    let mut stream = connect(e);
    let _ = stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// At the cap, a new connection closes another to make room: the oldest idle one (nginx's way),
/// else the one that has taken longest to send its request. So neither silent connections nor
/// connections trickling their heads lock a fresh client out. Only when every connection has a
/// request being handled (here, scrapes waiting on a slow endpoint) is the new one answered 503.
#[test]
fn at_the_connection_limit_the_oldest_idle_connection_makes_way() {
    let e = Exporter::start(&[
        "--ecs.metadata-uri",
        &fixture("fargate"),
        "--web.max-connections=10",
    ]);
    // Ten connections held, silent: idle, each taken before the next comes.
    let mut held: Vec<TcpStream> = (0..10)
        .map(|i| {
            let s = connect(&e);
            wait_for_sockets(e.pid(), 2 + i, ms(2000));
            s
        })
        .collect();
    let answer = health_once(&e);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    // The oldest was closed to admit it.
    assert_closed(&mut held[0], "the oldest idle connection");
}

/// At the cap with none idle, the connection that has taken longest to send its head makes way:
/// clients trickling their heads do not lock a fresh client out either.
#[test]
fn at_the_connection_limit_the_slowest_sender_makes_way() {
    let e = Exporter::start(&[
        "--ecs.metadata-uri",
        &fixture("fargate"),
        "--web.max-connections=10",
    ]);
    // Ten connections each halfway through a request head: the oldest makes way.
    let mut slow: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut s = connect(&e);
            // In two pieces, the second read only once the connection's thread has marked it
            // as reading a request: so each is a sender before the next comes (under emulation
            // threads start late, and out of order), and the first the slowest.
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .expect("half a request");
            wait_until_read([&s], ms(2000));
            s.write_all(b"X-Slow: ").expect("a little more");
            wait_until_read([&s], ms(2000));
            s
        })
        .collect();
    let answer = health_once(&e);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert_closed(&mut slow[0], "the connection slowest to send its head");
    drop(slow);
}

/// When every connection at the cap has a request the exporter still owes an answer to, a new
/// one is answered 503 and closed; once one is answered, new ones are served again.
#[test]
fn at_the_connection_limit_with_every_request_owed_a_new_one_gets_503() {
    let endpoint = Endpoint::fixture("fargate");
    let task = common::Behaviour::file(&common::project_dir().join("fixtures/fargate/task.json"));
    endpoint.set("/task", task.delayed(ms(2000)));
    let e = Exporter::start(&[
        "--ecs.metadata-uri",
        &endpoint.base,
        "--web.max-connections=4",
        "--web.max-requests=0",
        "--ecs.timeout=10s",
    ]);
    let owed: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = connect(&e);
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("a scrape");
            wait_until_read([&s], ms(2000));
            s
        })
        .collect();
    let answer = health_once(&e);
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("503 too many connections\n"), "{answer}");
    drop(owed);
    // The scrapes are answered (to closed connections) once the one fetch they share ends;
    // then there is room.
    common::wait_until("room again for a fresh client", ms(20_000), || {
        health_once(&e).starts_with("HTTP/1.1 200")
    });
}

/// The connection was closed by the exporter: end of stream or a reset.
fn assert_closed(stream: &mut TcpStream, what: &str) {
    let _ = stream.set_read_timeout(Some(ms(2000)));
    let mut rest = [0u8; 64];
    let read = stream.read(&mut rest);
    assert!(
        matches!(&read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{what} is still open: {read:?}"
    );
}

/// One keep-alive GET /health on `stream`: whether a whole 200 answer came back in time.
fn health_on(stream: &mut TcpStream) -> bool {
    if stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while !answer.ends_with(b"\r\n\r\nok") {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => return false,
        }
    }
    answer.starts_with(b"HTTP/1.1 200")
}

/// tiny_http's thread pool serves a connection on one thread until it closes, and can queue a
/// new connection for a thread that takes an earlier one instead (connections arriving together
/// while one thread waits): with every other thread held by a keep-alive client, the queued one
/// would wait until one of them leaves. Every new client must be answered at once all the same.
#[test]
fn new_clients_are_answered_while_keep_alive_clients_hold_the_pool() {
    for attempt in 0..4 {
        let e = Exporter::start(&[
            "--ecs.metadata-uri",
            &fixture("fargate"),
            "--web.idle-timeout=1h",
        ]);
        // Three of the pool's four idle threads held by keep-alive clients.
        let mut held: Vec<TcpStream> = Vec::new();
        for _ in 0..3 {
            let mut stream = connect(&e);
            assert!(health_on(&mut stream), "attempt {attempt}: a held client");
            held.push(stream);
        }
        // Eight more at once, each staying.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let clients: Vec<std::thread::JoinHandle<Option<TcpStream>>> = (0..8)
            .map(|_| {
                let address = e.base.trim_start_matches("http://").to_owned();
                let barrier = std::sync::Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut stream = TcpStream::connect(address).ok()?;
                    stream.set_read_timeout(Some(ms(5000))).ok()?;
                    health_on(&mut stream).then_some(stream)
                })
            })
            .collect();
        for client in clients {
            let stream = client.join().expect("joins");
            assert!(
                stream.is_some(),
                "attempt {attempt}: a new client got no answer in time beside {} held ones",
                held.len()
            );
            held.extend(stream);
        }
    }
}

/// A request is counted out of flight when its answer is ready, not after it is written: at the
/// default `--web.max-requests=40`, 40 clients that each send their next scrape as soon as they
/// have the last (never more than 40 outstanding) are never refused (6 in 1,000 were, for their
/// own last request).
#[test]
fn forty_clients_scraping_one_at_a_time_are_never_refused() {
    let e = Exporter::start(&["--ecs.metadata-uri", &fixture("fargate")]);
    let clients: Vec<_> = (0..40)
        .map(|_| {
            let base = e.base.clone();
            common::raw::client(move || {
                let mut c = common::raw::Conn::open(&base, ms(10_000));
                let mut statuses = Vec::new();
                for _ in 0..25 {
                    c.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
                    let a = c
                        .answer()
                        .map_err(|end| std::io::Error::other(format!("{end:?}")))?;
                    statuses.push(a.status);
                }
                Ok(statuses)
            })
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let statuses = c.join().expect("joins");
        let statuses = statuses.unwrap_or_else(|| panic!("client {i}: the connection ended"));
        assert!(
            statuses.iter().all(|&s| s == 200),
            "client {i}: {statuses:?}"
        );
    }
}

/// Every connection has Nagle's algorithm off (`TCP_NODELAY`), as Go's net/http sets it: an
/// answer leaves in more than one write, and with Nagle on the last segment waited for the
/// client's delayed ACK, about 40 ms for every kept-alive scrape after the first.
#[test]
fn connections_have_nagle_off() {
    let e = Exporter::start(&["--ecs.metadata-uri", &fixture("fargate")]);
    let mut c = common::raw::Conn::open(&e.base, ms(10_000));
    c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.answer().map(|a| a.status).ok(), Some(200));
    let end = common::raw::server_end(e.pid(), &c.stream).unwrap_or_else(|| {
        panic!(
            "the exporter's end of the connection (pidfd_getfd): {}",
            std::io::Error::last_os_error()
        )
    });
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one int into `on` on a descriptor this process owns.
    let got = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&end),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&mut on as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(got, 0, "getsockopt: {}", std::io::Error::last_os_error());
    assert_eq!(on, 1, "TCP_NODELAY is off on the exporter's end");
}

/// The accept queue is the kernel's largest (`net.core.somaxconn`), as Go's is: with the
/// exporter stopped, so that it accepts nothing, a burst of 300 connections all complete their
/// handshakes. std's backlog of 128 let 129 in; the rest waited for a SYN sent again a second
/// later (`/health` took 1 s during a burst of 1,500).
#[test]
fn a_burst_of_connections_past_128_is_queued_whole() {
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    let burst = 300.min(somaxconn);
    let e = Exporter::start(&["--ecs.metadata-uri", &fixture("fargate")]);
    let address: std::net::SocketAddr = e
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let pid = e.pid() as libc::pid_t;
    // SAFETY: kill(2) on our own child; the Exporter's drop kills it, stopped or not.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let held: Vec<std::io::Result<TcpStream>> = (0..burst)
        .map(|_| TcpStream::connect_timeout(&address, ms(2000)))
        .collect();
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let queued = held.iter().filter(|c| c.is_ok()).count();
    drop(held);
    assert_eq!(
        queued, burst,
        "connections queued while the exporter accepted none"
    );
    assert_eq!(e.get("/health").status_code, 200);
}
