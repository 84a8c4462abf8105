// ADDED by the ecs_exporter project (Apache-2.0 4(b)): one test per fault fixed in this copy,
// numbered as in PATCHES.md, each reproducing a fault of tiny_http 0.12.0 as published.
// Client threads end quietly when the server closes their connection; every time bound is
// support::bound's, scaled for emulation.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use tiny_http::{Limits, Response, Server};

#[allow(dead_code)]
mod support;
use support::bound;

/// Polls `check` until it holds, for up to `within` (scaled); fails the test naming `what`.
fn wait_until(what: &str, within: Duration, check: impl Fn() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < bound(within), "{}", what);
        thread::sleep(Duration::from_millis(5));
    }
}

fn server(limits: Limits) -> (Server, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    (
        Server::from_listeners(vec![listener.into()], limits).unwrap(),
        address,
    )
}

/// Answers every request with `ok` on a thread of its own, until the server goes.
fn serve_ok(server: Server) -> thread::JoinHandle<()> {
    support::serve(server, |_| Response::from_string("ok"))
}

/// Sends `bytes` on a fresh connection and reads what comes back until it is closed or a
/// second passes.
fn exchange(address: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut client = TcpStream::connect(address).unwrap();
    client
        .set_read_timeout(Some(bound(Duration::from_secs(1))))
        .unwrap();
    // The server may answer and close before it has all of a request that breaks a limit.
    let _ = client.write_all(bytes);
    let mut answer = Vec::new();
    let _ = client.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn health_within(address: std::net::SocketAddr, within: Duration) -> bool {
    let started = Instant::now();
    let answer = exchange(
        address,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    answer.starts_with("HTTP/1.1 200") && started.elapsed() < support::bound(within)
}

/// Fault 1: A request head past the limit is answered 431 and closed, not read into memory.
#[test]
fn a_head_past_the_limit_gets_431() {
    let (server, address) = server(Limits {
        max_head: 1024,
        ..Limits::default()
    });
    let _serving = serve_ok(server);
    let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 4096));
    big.extend(b"\r\n\r\n");
    let answer = exchange(address, &big);
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{}",
        answer
    );
    assert!(health_within(address, Duration::from_secs(1)));
}

/// Fault 2: A declared body past the limit is refused before anything is allocated for it (0.12.0
/// allocates the declared size to drain it: a 100 TB Content-Length ends the process).
#[test]
fn a_huge_declared_body_gets_413_and_the_server_lives() {
    let (server, address) = server(Limits {
        max_body: 16 * 1024,
        ..Limits::default()
    });
    let _serving = serve_ok(server);
    for length in ["100000000000000", "18446744073709551615", "16385"] {
        let request = format!("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n");
        let answer = exchange(address, request.as_bytes());
        assert!(
            answer.starts_with("HTTP/1.1 413 "),
            "{}: {}",
            length,
            answer
        );
    }
    let chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4001\r\n";
    assert!(exchange(address, chunked).starts_with("HTTP/1.1 413 "));
    assert!(health_within(address, Duration::from_secs(1)));
}

/// Fault 3: A body declared and never sent holds only its own connection: the handler never waits on
/// it, and other clients are answered at once.
#[test]
fn a_body_never_sent_holds_only_its_connection() {
    let (server, address) = server(Limits {
        timeout: Some(Duration::from_secs(30)),
        ..Limits::default()
    });
    let server = std::sync::Arc::new(server);
    let serving = std::sync::Arc::clone(&server);
    thread::spawn(move || {
        while let Ok(rq) = serving.recv() {
            let _ = rq.respond(Response::from_string("ok"));
        }
    });
    let mut stalled = TcpStream::connect(address).unwrap();
    stalled
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        .unwrap();
    wait_until(
        "the stalled connection is taken",
        Duration::from_secs(1),
        || server.num_connections() == 1,
    );
    for _ in 0..5 {
        assert!(health_within(address, Duration::from_millis(500)));
    }
}

/// Fault 3: The answer is written by the connection's thread: `respond` returns at once even when the
/// client never reads, and the next request is not read before the answer is written.
#[test]
fn respond_does_not_wait_for_a_client_that_never_reads() {
    let (server, address) = server(Limits {
        timeout: Some(Duration::from_secs(30)),
        ..Limits::default()
    });
    let client = TcpStream::connect(address).unwrap();
    let mut writer = client.try_clone().unwrap();
    thread::spawn(move || {
        for _ in 0..100 {
            if writer
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .is_err()
            {
                return;
            }
        }
    });
    // 32 MiB answers, never read: the first fills the socket's buffers (4 MiB did not on a
    // machine whose loopback buffered 2.75 MiB, and a larger tcp_wmem would take it whole).
    let big = vec![b'x'; 32 << 20];
    let rq = server.recv().unwrap();
    let started = Instant::now();
    rq.respond(Response::from_data(big.clone())).unwrap();
    assert!(started.elapsed() < bound(Duration::from_millis(500)));
    // The second is not read while the first is being written.
    assert!(server
        .recv_timeout(bound(Duration::from_millis(300)))
        .unwrap()
        .is_none());
    drop(client);
}

/// Fault 4: At the cap, a new connection closes the oldest idle one instead of being refused.
#[test]
fn at_the_cap_the_oldest_idle_connection_makes_room() {
    let (server, address) = server(Limits {
        max_connections: 4,
        ..Limits::default()
    });
    let _serving = serve_ok(server);
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = TcpStream::connect(address).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        c.set_read_timeout(Some(bound(Duration::from_secs(1))))
            .unwrap();
        let mut answer = [0u8; 512];
        assert!(c.read(&mut answer).unwrap() > 0);
        // Each idle from the moment its answer came: the first is the oldest.
        held.push(c);
    }
    for _ in 0..3 {
        assert!(health_within(address, Duration::from_secs(1)));
    }
    // The first (oldest) idle connection was closed to admit the new one.
    let mut rest = [0u8; 16];
    assert_eq!(held[0].read(&mut rest).unwrap_or(0), 0);
}

/// Fault 4: At the cap with none idle, a new connection closes the one that has taken longest
/// to send its request (a slow sender has had its chance); only when every held connection has a
/// request being handled does the new one get 503.
#[test]
fn at_the_cap_slow_senders_make_room_and_owed_answers_do_not() {
    let (server, address) = server(Limits {
        max_connections: 2,
        timeout: Some(Duration::from_secs(30)),
        ..Limits::default()
    });
    let server = std::sync::Arc::new(server);
    let mut slow = Vec::new();
    for _ in 0..2 {
        // In two pieces, the second read only once the connection's thread has marked it as
        // reading a request: so each is a sender before the next comes, and the first is the
        // slowest, whatever order the threads run in.
        let mut c = TcpStream::connect(address).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        wait_until("the slow sender is read", Duration::from_secs(1), || {
            support::read_by_server(&c)
        });
        c.write_all(b"Host: x\r\n").unwrap();
        wait_until(
            "the slow sender is read again",
            Duration::from_secs(1),
            || support::read_by_server(&c),
        );
        slow.push(c);
    }
    // A request that is read, and held unanswered.
    let mut owed = TcpStream::connect(address).unwrap();
    owed.write_all(b"GET /owed HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let first = server.recv().unwrap();
    assert_eq!(first.url(), "/owed");
    let mut rest = [0u8; 16];
    slow[0]
        .set_read_timeout(Some(bound(Duration::from_secs(2))))
        .unwrap();
    // Closed: end of stream, or a reset; a read that times out is a connection still open.
    let read = slow[0].read(&mut rest);
    assert!(
        match &read {
            Ok(n) => *n == 0,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        },
        "the oldest slow sender is closed: {:?}",
        read
    );
    // One more: the other slow sender makes room, and its request is owed too.
    let mut owed_too = TcpStream::connect(address).unwrap();
    owed_too
        .write_all(b"GET /owed HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let second = server.recv().unwrap();
    // Both held connections are owed an answer: no room.
    let answer = exchange(address, b"");
    assert!(answer.starts_with("HTTP/1.1 503 "), "{}", answer);
    drop((first, second, owed, owed_too));
}

/// Fault 5: The deadline: a connection idle, or a head stalled, past the timeout is closed.
#[test]
fn connections_idle_or_stalled_past_the_timeout_are_closed() {
    let (server, address) = server(Limits {
        timeout: Some(Duration::from_millis(300)),
        ..Limits::default()
    });
    let _serving = serve_ok(server);
    let mut idle = TcpStream::connect(address).unwrap();
    let mut stalled = TcpStream::connect(address).unwrap();
    stalled.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    for c in [&mut idle, &mut stalled] {
        c.set_read_timeout(Some(bound(Duration::from_secs(3))))
            .unwrap();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
    }
    assert!(started.elapsed() < bound(Duration::from_secs(2)));
}

/// Fault 7: Malformed request lines are answered (400, 505) and their threads end.
#[test]
fn malformed_requests_are_answered_and_their_threads_end() {
    let (server, address) = server(Limits::default());
    let probe = std::sync::Arc::new(server);
    let serving = std::sync::Arc::clone(&probe);
    thread::spawn(move || {
        while let Ok(rq) = serving.recv() {
            let _ = rq.respond(Response::from_string("ok"));
        }
    });
    let cases: [(&[u8], &str); 6] = [
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 "),
        (b"GET /\r\n\r\n", "HTTP/1.1 400 "),
        (b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 "),
        (b"GET / HTTP/1.1\r\nHost: x\r\nfoo\r\n\r\n", "HTTP/1.1 400 "),
        (
            b"GET / HTTP/1.1\r\n\r\n",
            "HTTP/1.1 400 Bad Request: missing required Host header",
        ),
        (
            b"GET / HTTP/1.1\nHost: x\nConnection: close\n\n",
            "HTTP/1.1 200 ",
        ),
    ];
    for _ in 0..20 {
        for (request, expected) in cases {
            let answer = exchange(address, request);
            assert!(answer.starts_with(expected), "{}", answer);
        }
    }
    wait_until(
        "every connection's thread ends",
        Duration::from_secs(3),
        || probe.num_connections() == 0,
    );
}

/// Fault 8: Framing as Go's net/http: differing Content-Lengths 400; chunked wins over
/// Content-Length; another Transfer-Encoding 501; an unterminated chunked body is never read as
/// a next request.
#[test]
fn framing_as_go() {
    let (server, address) = server(Limits {
        timeout: Some(Duration::from_millis(500)),
        ..Limits::default()
    });
    let _serving = serve_ok(server);
    let answer = exchange(
        address,
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    );
    assert!(answer.starts_with("HTTP/1.1 400 "), "{}", answer);
    let answer = exchange(
        address,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(answer.matches("HTTP/1.1 200 ").count(), 2, "{}", answer);
    let answer = exchange(
        address,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 501 "), "{}", answer);
    // HTTP/1.0 has no Transfer-Encoding: framed by Content-Length, nothing hides in the body.
    let answer = exchange(
        address,
        b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
    );
    assert_eq!(answer.matches("HTTP/1.0 200 ").count(), 2, "{}", answer);
    // Chunk data ends with CRLF exactly; a chunk size starts with a digit.
    for body in [&b"5\r\nabcde\n0\r\n\r\n"[..], b" 5\r\nabcde\r\n0\r\n\r\n"] {
        let request = [
            &b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            body,
            b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        .concat();
        let answer = exchange(address, &request);
        assert!(answer.starts_with("HTTP/1.1 400 "), "{}", answer);
        assert!(!answer.contains("200"), "{}", answer);
    }
    let answer = exchange(
        address,
        b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGET /\r\nHost: x\r\n\r\n",
    );
    assert!(!answer.contains("200"), "{}", answer);
}
