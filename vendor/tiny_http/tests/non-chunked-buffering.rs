// CHANGED by the ecs_exporter project (Apache-2.0 4(b)): `respond` takes an owned body now
// (the connection's thread writes it, after `respond` has returned), so the readers are moved in
// and their positions read through the shared counter: once the connection's thread has given
// up on the closed client, and after the writer has filled what a client that never reads
// takes in (support::bound).
extern crate tiny_http;

use std::io::{Cursor, Read, Write};
use std::sync::{
    atomic::{
        AtomicUsize,
        Ordering::{AcqRel, Acquire},
    },
    Arc,
};

#[allow(dead_code)]
mod support;

struct MeteredReader<T> {
    inner: T,
    position: Arc<AtomicUsize>,
}

impl<T> Read for MeteredReader<T>
where
    T: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(read) => {
                self.position.fetch_add(read, AcqRel);
                Ok(read)
            }
            e => e,
        }
    }
}

type Reader = MeteredReader<Cursor<String>>;

fn big_response_reader() -> Reader {
    let big_body = "ABCDEFGHIJKLMNOPQRSTUVXYZ".repeat(1024 * 1024 * 16);
    MeteredReader {
        inner: Cursor::new(big_body),
        position: Arc::new(AtomicUsize::new(0)),
    }
}

fn identity_served(r: Reader) -> tiny_http::Response<Reader> {
    let body_len = r.inner.get_ref().len();
    tiny_http::Response::empty(200)
        .with_chunked_threshold(usize::MAX)
        .with_data(r, Some(body_len))
}

/// Checks that a body-Read:er is not called when the client has disconnected
#[test]
fn responding_to_closed_client() {
    let (server, mut stream) = support::new_one_server_one_client();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();

    let request = server.recv().unwrap();

    // Client already disconnected
    drop(stream);

    let reader = big_response_reader();
    let position = reader.position.clone();
    request
        .respond(identity_served(reader))
        .expect("Successful");
    // The connection's thread ends once a write fails.
    let started = std::time::Instant::now();
    while server.num_connections() > 0 {
        assert!(started.elapsed() < support::bound(std::time::Duration::from_secs(5)));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }

    assert!(position.load(Acquire) < 1024 * 1024);
}

/// Checks that a slow client does not cause data to be consumed and buffered from a reader
#[test]
fn responding_to_non_consuming_client() {
    let (server, mut stream) = support::new_one_server_one_client();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();

    let request = server.recv().unwrap();

    let reader = big_response_reader();
    let position = reader.position.clone();

    // Client still connected, but not reading anything
    request
        .respond(identity_served(reader))
        .expect("Successful");

    // What is asserted is that something does not happen (the reader drained into memory), so
    // the test gives it the time to: as long as the socket buffers take to fill, and more.
    std::thread::sleep(support::bound(std::time::Duration::from_millis(100)));

    // It seems the client TCP socket can buffer quite a lot, so we need to be permissive
    assert!(position.load(Acquire) < 8 * 1024 * 1024);

    drop(stream);
}
