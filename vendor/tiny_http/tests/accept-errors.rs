// ADDED by the ecs_exporter project (Apache-2.0 4(b)), PATCHES.md 6: an accept that fails (here
// for want of descriptors) is retried with a pause and never ends the accept thread, nor panics;
// once descriptors are free again, connections are served. A test binary of its own, because it
// uses up the process's descriptors.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

#[allow(dead_code)]
mod support;

#[test]
fn out_of_descriptors_the_server_waits_and_serves_again() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server =
        tiny_http::Server::from_listeners(vec![listener.into()], tiny_http::Limits::default())
            .unwrap();
    std::thread::spawn(move || {
        while let Ok(rq) = server.recv() {
            let _ = rq.respond(tiny_http::Response::from_string("ok"));
        }
    });
    // Use up every descriptor.
    let mut hoard = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        hoard.push(file);
        if hoard.len() > 1_000_000 {
            break;
        }
    }
    // One for the client's socket: the accept thread then finds none for its side, fails, and
    // backs off (0.12.0's accept thread ends there, and nothing is served again).
    drop(hoard.pop());
    let mut client = TcpStream::connect(address).unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Not a wait for an event: the fault is what the accept thread does while descriptors are
    // out, which shows no sign outside; this gives it the time to fail and back off a few times.
    std::thread::sleep(support::bound(Duration::from_millis(300)));
    hoard.clear();
    let mut answer = String::new();
    client
        .set_read_timeout(Some(support::bound(Duration::from_secs(5))))
        .unwrap();
    let _ = client.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{:?}", answer);
}
