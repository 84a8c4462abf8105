//! The one fake metadata endpoint of every test and benchmark.
//!
//! By default it answers as the ECS agent's TMDS server does (amazon-ecs-agent
//! `ecs-agent/tmds/handlers/utils/helpers.go` writes the JSON in one `Write` after `WriteHeader`,
//! and Go's net/http frames it): a body over 2 KiB goes out chunked, in one chunk, without a
//! Content-Length; a smaller one with a Content-Length. Connections are kept alive and closed
//! after an idle time (the agent's 5 s `ReadTimeout`, settable here). Each path below the base
//! has a [`Behaviour`], which a test may change at any time; every fault the suite injects is one
//! of them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Go's net/http sends a body chunked when the handler writes more than this before it returns.
pub const CHUNKING_THRESHOLD: usize = 2048;

/// What the endpoint does with a request for one path.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with this JSON body, framed as the agent frames it.
    Json(Arc<[u8]>),
    /// This status with the agent's JSON error body.
    Status(u16),
    /// Waits this long, then behaves as the inner behaviour.
    Delay(Duration, Box<Behaviour>),
    /// Reads the request and never answers, until the client closes the connection or the
    /// endpoint is dropped; busy all that time (so that [`Endpoint::take_requests`] sees a
    /// request the client abandoned overlap its next).
    Stall,
    /// Reads the request and closes the connection without a response.
    Close,
    /// 200 with a Content-Length of the whole body, half the body, then the connection closed.
    CutShort(Arc<[u8]>),
    /// 200 chunked: the head and half of the one chunk, then the connection closed.
    ClosedMidChunk(Arc<[u8]>),
    /// 200 chunked with a chunk size that is not hexadecimal.
    BadChunkSize(Arc<[u8]>),
    /// These bytes instead of a response, then the connection closed (no status line, an
    /// interim response, a redirect: anything).
    Raw(Arc<[u8]>),
    /// 200 with a Content-Length of this many bytes of spaces, sent until the client goes away.
    Huge(usize),
}

impl Behaviour {
    /// The file's contents as a 200 JSON answer, read once.
    pub fn file(path: &Path) -> Behaviour {
        Behaviour::Json(body_of(path))
    }

    pub fn json(body: impl Into<Vec<u8>>) -> Behaviour {
        Behaviour::Json(body.into().into())
    }

    pub fn raw(bytes: impl Into<Vec<u8>>) -> Behaviour {
        Behaviour::Raw(bytes.into().into())
    }

    pub fn delayed(self, by: Duration) -> Behaviour {
        Behaviour::Delay(by, Box::new(self))
    }
}

/// The contents of a file, for a body.
pub fn body_of(path: &Path) -> Arc<[u8]> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .into()
}

/// A metadata endpoint on loopback: `{base}/task`, `{base}/task/stats` and whatever paths a test
/// sets.
pub struct Endpoint {
    /// `http://127.0.0.1:PORT/v4/fake`: what `--ecs.metadata-uri` takes.
    pub base: String,
    address: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    routes: Mutex<Vec<(String, Behaviour)>>,
    /// An idle keep-alive connection is closed after this long.
    idle_timeout: Mutex<Duration>,
    /// How long a new connection waits before its first request is read (an agent slow to take
    /// a connection).
    per_connection: Mutex<Duration>,
    /// The paths asked for, below the base, in arrival order, since the last `take_requests`.
    requests: Mutex<Vec<String>>,
    hits: AtomicUsize,
    connections: AtomicUsize,
    /// Connections closed (by either end) so far.
    closed: AtomicUsize,
    busy: AtomicUsize,
    most_busy: AtomicUsize,
    stop: AtomicBool,
}

impl Endpoint {
    /// An endpoint that answers 404 to every path until a test sets one.
    pub fn start() -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the fake endpoint binds");
        let address = listener.local_addr().expect("address");
        let shared = Arc::new(Shared {
            routes: Mutex::new(Vec::new()),
            idle_timeout: Mutex::new(Duration::from_secs(5)),
            per_connection: Mutex::new(Duration::ZERO),
            requests: Mutex::new(Vec::new()),
            hits: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            most_busy: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                accepting.connections.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&accepting);
                std::thread::spawn(move || {
                    serve(stream, &shared);
                    shared.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Endpoint {
            base: format!("http://{address}/v4/fake"),
            address,
            shared,
        }
    }

    /// `/task` and `/task/stats` from two files.
    pub fn files(task: &Path, stats: &Path) -> Endpoint {
        let endpoint = Endpoint::start();
        endpoint.set("/task", Behaviour::file(task));
        endpoint.set("/task/stats", Behaviour::file(stats));
        endpoint
    }

    /// `/task` and `/task/stats` from `fixtures/<case>/`.
    pub fn fixture(case: &str) -> Endpoint {
        let dir = super::project_dir().join("fixtures").join(case);
        Endpoint::files(&dir.join("task.json"), &dir.join("stats.json"))
    }

    /// What `path` (below the base, like `/task`) does from now on.
    pub fn set(&self, path: &str, behaviour: Behaviour) {
        let mut routes = self.shared.routes.lock().expect("routes");
        routes.retain(|(p, _)| p != path);
        routes.push((path.to_owned(), behaviour));
    }

    pub fn set_idle_timeout(&self, timeout: Duration) {
        *self.shared.idle_timeout.lock().expect("idle timeout") = timeout;
    }

    pub fn set_per_connection(&self, delay: Duration) {
        *self.shared.per_connection.lock().expect("per connection") = delay;
    }

    /// Requests answered or being answered so far.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// Waits (up to 10 s, else fails the test) until a scrape has begun: a request has come.
    pub fn wait_for_a_scrape(&self) {
        super::wait_until("a scrape begins", super::ms(10_000), || self.hits() > 0);
    }

    /// Connections open now (accepted and not yet closed by either end).
    pub fn open_connections(&self) -> usize {
        let closed = self.shared.closed.load(Ordering::SeqCst);
        self.connections().saturating_sub(closed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The paths asked for since the last call, sorted, and the most requests that were being
    /// answered at once in that time.
    pub fn take_requests(&self) -> (Vec<String>, usize) {
        let mut paths = std::mem::take(&mut *self.shared.requests.lock().expect("requests"));
        paths.sort();
        (paths, self.shared.most_busy.swap(0, Ordering::SeqCst))
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address);
    }
}

/// Answers the requests of one connection until the client closes it, it is idle for the idle
/// timeout, or a behaviour closes it.
fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let delay = *shared.per_connection.lock().expect("per connection");
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let mut pending = Vec::with_capacity(1024);
    loop {
        let idle = *shared.idle_timeout.lock().expect("idle timeout");
        let _ = stream.set_read_timeout(Some(idle));
        let Some((path, close)) = read_request(&mut stream, &mut pending) else {
            return;
        };
        let path = path.strip_prefix("/v4/fake").unwrap_or(&path).to_owned();
        shared.hits.fetch_add(1, Ordering::SeqCst);
        shared.requests.lock().expect("requests").push(path.clone());
        let behaviour = shared
            .routes
            .lock()
            .expect("routes")
            .iter()
            .rev()
            .find(|(p, _)| *p == path)
            .map(|(_, b)| b.clone())
            .unwrap_or(Behaviour::Status(404));
        // Busy from the request until the answer starts: a client that gets the answer may send
        // its next request at once, on another connection.
        let busy = shared.busy.fetch_add(1, Ordering::SeqCst) + 1;
        shared.most_busy.fetch_max(busy, Ordering::SeqCst);
        let mut behaviour = &behaviour;
        while let Behaviour::Delay(by, inner) = behaviour {
            std::thread::sleep(*by);
            behaviour = inner;
        }
        shared.busy.fetch_sub(1, Ordering::SeqCst);
        let keep = answer(&mut stream, behaviour, shared);
        if !keep || close {
            return;
        }
    }
}

/// Reads one request head: its path and whether the client asked to close the connection after
/// the answer; `None` when the client closed, went idle or sent no request line.
fn read_request(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<(String, bool)> {
    let mut buf = [0u8; 1024];
    let end = loop {
        if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if pending.len() > 64 * 1024 {
            return None;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&pending[..end]).into_owned();
    pending.drain(..end);
    let close = head
        .to_ascii_lowercase()
        .contains("\r\nconnection: close\r\n");
    head.split_whitespace()
        .nth(1)
        .map(|path| (path.to_owned(), close))
}

/// Carries out one behaviour; whether the connection stays open for another request.
fn answer(stream: &mut TcpStream, behaviour: &Behaviour, shared: &Shared) -> bool {
    match behaviour {
        Behaviour::Json(body) => stream.write_all(&framed(200, body)).is_ok(),
        Behaviour::Status(code) => {
            let body = format!(
                "{{\"code\":\"injected\",\"message\":\"HTTP {code} from the fake endpoint\"}}"
            );
            stream.write_all(&framed(*code, body.as_bytes())).is_ok()
        }
        // Waited out by `serve`.
        Behaviour::Delay(_, inner) => answer(stream, inner, shared),
        Behaviour::Stall => {
            let busy = shared.busy.fetch_add(1, Ordering::SeqCst) + 1;
            shared.most_busy.fetch_max(busy, Ordering::SeqCst);
            let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
            let mut byte = [0u8; 1];
            while !shared.stop.load(Ordering::SeqCst) {
                match stream.read(&mut byte) {
                    Ok(0) => break,
                    Err(e)
                        if e.kind() != std::io::ErrorKind::WouldBlock
                            && e.kind() != std::io::ErrorKind::TimedOut =>
                    {
                        break;
                    }
                    _ => {}
                }
            }
            shared.busy.fetch_sub(1, Ordering::SeqCst);
            false
        }
        Behaviour::Close => false,
        Behaviour::CutShort(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body[..body.len() / 2]);
            false
        }
        Behaviour::ClosedMidChunk(body) => {
            let _ = stream.write_all(chunked_head(200).as_bytes());
            let _ = write!(stream, "{:x}\r\n", body.len());
            let _ = stream.write_all(&body[..body.len() / 2]);
            false
        }
        Behaviour::BadChunkSize(body) => {
            let _ = stream.write_all(chunked_head(200).as_bytes());
            let _ = write!(stream, "zz{:x}\r\n", body.len());
            let _ = stream.write_all(body);
            let _ = stream.write_all(b"\r\n0\r\n\r\n");
            false
        }
        Behaviour::Raw(bytes) => {
            let _ = stream.write_all(bytes);
            false
        }
        Behaviour::Huge(size) => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes());
            let chunk = vec![b' '; 65536];
            let mut sent = 0;
            while sent < *size {
                let n = chunk.len().min(size - sent);
                if stream.write_all(&chunk[..n]).is_err() {
                    break;
                }
                sent += n;
            }
            false
        }
    }
}

/// A whole answer as Go's net/http writes a body handed to it in one `Write`.
pub fn framed(status: u16, body: &[u8]) -> Vec<u8> {
    let mut out;
    if body.len() > CHUNKING_THRESHOLD {
        out = chunked_head(status).into_bytes();
        out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n0\r\n\r\n");
    } else {
        out = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nDate: Mon, 30 Nov 2026 00:00:00 GMT\r\nContent-Length: {}\r\n\r\n",
            reason(status),
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
    }
    out
}

fn chunked_head(status: u16) -> String {
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nDate: Mon, 30 Nov 2026 00:00:00 GMT\r\nTransfer-Encoding: chunked\r\n\r\n",
        reason(status)
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
