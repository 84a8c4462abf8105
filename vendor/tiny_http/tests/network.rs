// CHANGED by the ecs_exporter project (Apache-2.0 4(b)): every client read has a deadline
// (support::bound), so a connection the server fails to close fails the test instead of
// hanging it (upstream's `set_keepalive ... FIXME`s); threads the server may cut off end
// quietly (support::serve); the commented-out `connection_timeout` is tests/faults.rs's
// `connections_idle_or_stalled_past_the_timeout_are_closed`; and `pipelined_requests_are_read_one_at_a_time`
// replaces `responses_reordered` (PATCHES.md 3).
extern crate tiny_http;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

#[allow(dead_code)]
mod support;

#[test]
fn connection_close_header() {
    let mut client = support::new_client_to_hello_world_server();

    (write!(client, "GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n")).unwrap();
    (write!(client, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n")).unwrap();

    // if the connection was not closed, this will err with timeout
    client
        .set_read_timeout(Some(support::bound(Duration::from_secs(5))))
        .unwrap();
    let mut out = Vec::new();
    client.read_to_end(&mut out).unwrap();
}

#[test]
fn http_1_0_connection_close() {
    let mut client = support::new_client_to_hello_world_server();

    (write!(client, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")).unwrap();

    // if the connection was not closed, this will err with timeout
    client
        .set_read_timeout(Some(support::bound(Duration::from_secs(5))))
        .unwrap();
    let mut out = Vec::new();
    client.read_to_end(&mut out).unwrap();
}

#[test]
fn detect_connection_closed() {
    let mut client = support::new_client_to_hello_world_server();

    (write!(client, "GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n")).unwrap();
    client.shutdown(Shutdown::Write).unwrap();

    // if the connection was not closed, this will err with timeout
    client
        .set_read_timeout(Some(support::bound(Duration::from_secs(5))))
        .unwrap();
    let mut out = Vec::new();
    client.read_to_end(&mut out).unwrap();
}

#[test]
fn poor_network_test() {
    let mut client = support::new_client_to_hello_world_server();

    // Pacing: the request comes in pieces, as over a poor network.
    (write!(client, "G")).unwrap();
    thread::sleep(Duration::from_millis(100));
    (write!(client, "ET /he")).unwrap();
    thread::sleep(Duration::from_millis(100));
    (write!(client, "llo HT")).unwrap();
    thread::sleep(Duration::from_millis(100));
    (write!(client, "TP/1.")).unwrap();
    thread::sleep(Duration::from_millis(100));
    (write!(client, "1\r\nHo")).unwrap();
    thread::sleep(Duration::from_millis(100));
    (write!(client, "st: localho")).unwrap();
    thread::sleep(Duration::from_millis(100));
    (write!(client, "st\r\nConnec")).unwrap();
    thread::sleep(Duration::from_millis(100));
    (write!(client, "tion: close\r")).unwrap();
    thread::sleep(Duration::from_millis(100));
    (write!(client, "\n\r")).unwrap();
    thread::sleep(Duration::from_millis(100));
    (writeln!(client)).unwrap();

    client
        .set_read_timeout(Some(support::bound(Duration::from_secs(5))))
        .unwrap();
    let mut data = String::new();
    client.read_to_string(&mut data).unwrap();
    assert!(data.ends_with("hello world"));
}

#[test]
fn pipelining_test() {
    let mut client = support::new_client_to_hello_world_server();

    (write!(client, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")).unwrap();
    (write!(client, "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")).unwrap();
    (write!(
        client,
        "GET /world HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    ))
    .unwrap();

    client
        .set_read_timeout(Some(support::bound(Duration::from_secs(5))))
        .unwrap();
    let mut data = String::new();
    client.read_to_string(&mut data).unwrap();
    assert_eq!(data.split("hello world").count(), 4);
}

#[test]
fn server_crash_results_in_response() {
    let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();

    thread::spawn(move || {
        // oops, server crash: the request is dropped unanswered
        let _ = server.recv();
    });

    (write!(
        client,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    ))
    .unwrap();

    client
        .set_read_timeout(Some(support::bound(Duration::from_secs(5))))
        .unwrap();
    let mut content = String::new();
    client.read_to_string(&mut content).unwrap();
    assert!(&content[9..].starts_with('5')); // 5xx status code
}

// CHANGED by the ecs_exporter project (Apache-2.0 4(b)), PATCHES.md 3: a connection's next
// request is read only once the previous one is answered, so answers can no longer be given out
// of order; this test (was `responses_reordered`) holds the new promise.
#[test]
fn pipelined_requests_are_read_one_at_a_time() {
    let (server, mut client) = support::new_one_server_one_client();

    (write!(client, "GET /1 HTTP/1.1\r\nHost: localhost\r\n\r\n")).unwrap();
    (write!(
        client,
        "GET /2 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    ))
    .unwrap();

    let rq1 = server.recv().unwrap();
    assert_eq!(rq1.url(), "/1");
    // Not read before the first is answered.
    assert!(server
        .recv_timeout(support::bound(Duration::from_millis(200)))
        .unwrap()
        .is_none());
    rq1.respond(tiny_http::Response::from_string("first request".to_owned()))
        .unwrap();
    let rq2 = server.recv().unwrap();
    assert_eq!(rq2.url(), "/2");
    rq2.respond(tiny_http::Response::from_string(
        "second request".to_owned(),
    ))
    .unwrap();

    let mut content = String::new();
    client.read_to_string(&mut content).unwrap();
    assert!(content.contains("first request"));
    assert!(content.ends_with("second request"));
}

#[test]
fn no_transfer_encoding_on_204() {
    let (server, mut client) = support::new_one_server_one_client();

    (write!(
        client,
        "GET / HTTP/1.1\r\nHost: localhost\r\nTE: chunked\r\nConnection: close\r\n\r\n"
    ))
    .unwrap();

    support::serve(server, |_| {
        tiny_http::Response::from_string("").with_status_code(tiny_http::StatusCode(204))
    });

    let mut content = String::new();
    client.read_to_string(&mut content).unwrap();

    assert!(content.starts_with("HTTP/1.1 204"));
    assert!(!content.contains("Transfer-Encoding: chunked"));
}

#[test]
fn chunked_threshold() {
    let resp = tiny_http::Response::from_string("test".to_string());
    assert_eq!(resp.chunked_threshold(), 32768);
    assert_eq!(resp.with_chunked_threshold(42).chunked_threshold(), 42);
}
