// CHANGED by the ecs_exporter project (Apache-2.0 4(b)): what every test here uses to talk to
// a server. A thread the server may cut off ends quietly on an I/O error (a panic in a
// detached thread while the test binary exits aborts it under emulation); time bounds are
// scaled for emulation in one place, `bound`.

use std::io;
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

/// `native`, a bound that holds on a native machine, scaled for this run:
/// `ECS_EXPORTER_TEST_TIME_SCALE` times if set, else 10 times under an emulator
/// (`ECS_EXPORTER_TEST_RUNNER`, as the exporter's CI sets it for aarch64): the same rule as
/// the exporter's tests/common/time.rs.
pub fn bound(native: Duration) -> Duration {
    let set = std::env::var("ECS_EXPORTER_TEST_TIME_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s: &u32| s > 0);
    let emulated = std::env::var("ECS_EXPORTER_TEST_RUNNER").is_ok_and(|r| !r.is_empty());
    native * set.unwrap_or(if emulated { 10 } else { 1 })
}

/// Runs `client` on a thread of its own: what a client does to a connection the server may
/// close (write a slow body, read an answer). An I/O error ends it quietly: the server closing
/// the connection is an outcome the test looks at elsewhere, not a failure of this thread.
pub fn client(client: impl FnOnce() -> io::Result<()> + Send + 'static) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let _ = client();
    })
}

/// Answers every request with `answer` on a thread of its own, until the server is dropped
/// or unblocked; an answer that cannot be written (the client has gone) is not a failure.
pub fn serve(
    server: tiny_http::Server,
    answer: impl Fn(&tiny_http::Request) -> tiny_http::Response<io::Cursor<Vec<u8>>> + Send + 'static,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        while let Ok(rq) = server.recv() {
            let response = answer(&rq);
            let _ = rq.respond(response);
        }
    })
}

/// Creates a server and a client connected to the server.
pub fn new_one_server_one_client() -> (tiny_http::Server, TcpStream) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    (server, client)
}

/// Creates a "hello world" server with a client connected to the server. The server answers
/// for as long as the test binary runs.
pub fn new_client_to_hello_world_server() -> TcpStream {
    let (server, client) = new_one_server_one_client();
    serve(server, |_| {
        tiny_http::Response::from_string("hello world".to_string())
    });
    client
}

/// Whether the server has read everything `client` sent: the receive queue of the server's end
/// of the connection is empty (/proc/net/tcp; `false` while that end is not listed). A test
/// waits for it rather than sleep and hope the server has read.
pub fn read_by_server(client: &TcpStream) -> bool {
    let (Ok(ours), Ok(theirs)) = (client.local_addr(), client.peer_addr()) else {
        return false;
    };
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next().unwrap_or(""), 16).ok();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(queues)) =
            (fields.get(1), fields.get(2), fields.get(4))
        else {
            return false;
        };
        port(local) == Some(theirs.port())
            && port(remote) == Some(ours.port())
            && queues.rsplit(':').next() == Some("00000000")
    })
}
