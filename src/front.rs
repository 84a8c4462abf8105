//! The accept path in front of tiny_http: what bounds what a client can make the exporter hold.
//!
//! tiny_http accepts every connection and reads a request head line by line into memory without
//! a limit (a 16 MiB header line held 32 MiB), and it takes connections only from a listener. So
//! the exporter listens itself, and tiny_http listens on an internal Unix socket (abstract, so
//! that it needs no file system): each accepted connection gets a thread that relays its bytes to
//! tiny_http and back, and on the way
//!
//! - counts the bytes since the end of the last request head: past [`MAX_HEAD`] the client gets
//!   `431` and the connection is closed (Go's net/http stops at 1 MB);
//! - closes a connection that moves no byte either way for `--web.idle-timeout`;
//! - holds at most `--web.max-connections` connections: the next one gets `503` and is closed.
//!
//! Processes in the task's own network namespace could reach the internal socket directly;
//! clients on the network cannot (docs/design.md, "Clients").

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::log;
use crate::log::Logger;

/// The longest request head (or run of body bytes without a blank line) a client may send.
pub const MAX_HEAD: usize = 16 * 1024;

const TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
    Content-Type: text/plain; charset=utf-8\r\nContent-Length: 36\r\nConnection: close\r\n\r\n\
    431 request header fields too large\n";
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    Content-Type: text/plain; charset=utf-8\r\nContent-Length: 25\r\nConnection: close\r\n\r\n\
    503 too many connections\n";

/// What the accept threads and the relays share.
pub struct Door {
    /// Readable once the exporter has answered its last request (the writing end closed): every
    /// relay then forwards what tiny_http has written and ends.
    drained: std::io::PipeReader,
    drain: Mutex<Option<std::io::PipeWriter>>,
    /// Where tiny_http listens now (a new name if it had to listen again).
    internal: Mutex<UnixAddr>,
    /// Connections held.
    open: Capped,
    max_connections: usize,
    idle_timeout: Duration,
    stop: AtomicBool,
    logger: Logger,
}

impl Door {
    pub fn new(
        internal: UnixAddr,
        max_connections: usize,
        idle_timeout: Duration,
        logger: Logger,
    ) -> std::io::Result<Door> {
        let (drained, drain) = std::io::pipe()?;
        Ok(Door {
            drained,
            drain: Mutex::new(Some(drain)),
            internal: Mutex::new(internal),
            open: Capped::default(),
            max_connections,
            idle_timeout,
            stop: AtomicBool::new(false),
            logger,
        })
    }

    /// Where new connections go from now on.
    pub fn set_internal(&self, address: UnixAddr) {
        *self.internal.lock().unwrap_or_else(PoisonError::into_inner) = address;
    }

    /// No new connection is relayed from now on.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Once every answer has been written to tiny_http: lets every relay forward what it has
    /// and end, and waits up to `patience` for them, so that no answer is lost as the process
    /// exits.
    pub fn drain(&self, patience: Duration) {
        self.stop();
        drop(
            self.drain
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let started = std::time::Instant::now();
        while self.open.get() > 0 && started.elapsed() < patience {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn internal(&self) -> UnixAddr {
        self.internal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// An internal listener for tiny_http: an abstract Unix socket named after this process, with
/// a number that the next try increases (two exporters in one network namespace may both be
/// PID 1 of their containers).
pub fn internal_listener() -> std::io::Result<UnixListener> {
    let mut n = 0u32;
    loop {
        let name = format!("ecs_exporter/{}/{n}", std::process::id());
        let address = UnixAddr::from_abstract_name(name.as_bytes())?;
        match UnixListener::bind_addr(&address) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && n < 1000 => n += 1,
            result => return result,
        }
    }
}

/// Accepts on `listener` until the door is stopped, handing each connection to a relay thread.
/// An accept that fails (out of descriptors, say) is retried after 100 ms; the listener keeps
/// its socket, so nothing else needs doing.
pub fn accept(listener: TcpListener, door: Arc<Door>) {
    let mut failures = 0u32;
    while !door.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) => {
                failures += 1;
                if failures % 100 == 1 {
                    log!(
                        door.logger,
                        Warn,
                        "accepting a connection failed; retrying",
                        "error" = &e
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        failures = 0;
        if !door.open.admit(door.max_connections) {
            let mut client = client;
            let _ = client.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = client.write_all(TOO_MANY);
            continue;
        }
        let held = Held(Arc::clone(&door));
        let spawned = std::thread::Builder::new()
            .name("relay".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let door = &held.0;
                if let Err(e) = relay(client, door) {
                    log!(door.logger, Debug, "a connection ended", "error" = &e);
                }
            });
        if let Err(e) = spawned {
            log!(
                door.logger,
                Warn,
                "cannot start a thread for a connection; closed it",
                "error" = &e
            );
        }
    }
}

/// A count with a cap: connections held here, metrics requests in flight in `server`.
#[derive(Debug, Default)]
pub struct Capped(AtomicUsize);

impl Capped {
    /// Counts one more, unless that would pass `max` (0: no limit).
    pub fn admit(&self, max: usize) -> bool {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (max == 0 || n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Counts one fewer.
    pub fn done(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A connection counted as held until it is dropped (with its relay thread, or with the closure
/// of a thread that could not start).
struct Held(Arc<Door>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.open.done();
    }
}

/// How long a relay waits for tiny_http to start answering before it nudges tiny_http's pool;
/// the wait doubles after each nudge, up to [`NUDGE_AT_MOST`], for as long as the answer waits.
const NUDGE_AFTER: Duration = Duration::from_millis(100);
const NUDGE_AT_MOST: Duration = Duration::from_millis(1600);

/// Makes tiny_http's thread pool start a thread, which then takes any connection the pool left
/// waiting. tiny_http 0.12's `TaskPool::spawn` queues a connection for a thread it counts as
/// waiting, and that thread may take an earlier one instead: the connection then waits until a
/// thread is free, which, with keep-alive connections, can be minutes. A connection that closes
/// at once is handed to a new thread (or a waiting one), which ends it and takes the next. A
/// nudge can itself be queued behind the connection it was for (when the pool counted a thread
/// as waiting that had already been woken), so a relay nudges again until it is answered: an
/// answer that is only slow (a scrape of a slow agent) costs a nudge per doubling of its wait.
fn nudge(door: &Door) {
    let _ = UnixStream::connect_addr(&door.internal());
}

/// Relays one connection until either side closes it or it is idle for the timeout.
fn relay(mut client: std::net::TcpStream, door: &Door) -> std::io::Result<()> {
    let idle = door.idle_timeout;
    // Without TCP_NODELAY an answer written in more than one piece waits for the client's
    // delayed ACK: 40 ms per scrape.
    client.set_nodelay(true)?;
    client.set_write_timeout(Some(idle))?;
    let mut server = UnixStream::connect_addr(&door.internal())?;
    server.set_write_timeout(Some(idle))?;
    let mut head = HeadLimit::default();
    let mut buf = [0u8; 8 * 1024];
    let mut client_sends = true;
    let mut draining = false;
    let mut last_moved = Instant::now();
    // While the client's bytes wait for tiny_http's answer: since when, and how long until the
    // next nudge.
    let mut unanswered: Option<(Instant, Duration)> = None;
    loop {
        let watched = [
            client_sends.then(|| client.as_raw_fd()),
            Some(server.as_raw_fd()),
            (!draining).then(|| door.drained.as_raw_fd()),
        ];
        // Draining, whatever tiny_http wrote is already there to read.
        let wait = match (draining, unanswered) {
            (true, _) => Duration::ZERO,
            (false, Some((since, after))) => after.saturating_sub(since.elapsed()),
            (false, None) => idle.saturating_sub(last_moved.elapsed()),
        };
        let [from_client, from_server, drain] = crate::sys::poll_readable(watched, wait)?;
        if drain {
            draining = true;
            client_sends = false;
            continue;
        }
        if !from_client && !from_server {
            if draining || last_moved.elapsed() >= idle {
                return Ok(());
            }
            if let Some((_, after)) = unanswered {
                nudge(door);
                unanswered = Some((Instant::now(), (after * 2).min(NUDGE_AT_MOST)));
            }
            continue;
        }
        last_moved = Instant::now();
        if from_client {
            match client.read(&mut buf)? {
                0 => {
                    // The client sent all it will; tiny_http answers what it has, then closes.
                    client_sends = false;
                    server.shutdown(std::net::Shutdown::Write)?;
                }
                n => {
                    let bytes = buf.get(..n).unwrap_or_default();
                    if !head.passes(bytes) {
                        client.write_all(TOO_LARGE)?;
                        return Ok(());
                    }
                    server.write_all(bytes)?;
                    unanswered.get_or_insert_with(|| (Instant::now(), NUDGE_AFTER));
                }
            }
        }
        if from_server {
            unanswered = None;
            match server.read(&mut buf)? {
                0 => return Ok(()),
                n => client.write_all(buf.get(..n).unwrap_or_default())?,
            }
        }
    }
}

/// Counts the bytes a client sends since the end of its last request head (a blank line).
#[derive(Default)]
struct HeadLimit {
    /// How much of `\r\n\r\n` the last bytes were.
    matched: usize,
    since_end: usize,
}

impl HeadLimit {
    /// Takes the next bytes; false once a head (or a body without a blank line) runs past
    /// [`MAX_HEAD`].
    fn passes(&mut self, bytes: &[u8]) -> bool {
        const END: &[u8; 4] = b"\r\n\r\n";
        for &b in bytes {
            self.since_end += 1;
            if self.since_end > MAX_HEAD {
                return false;
            }
            self.matched = if END.get(self.matched) == Some(&b) {
                self.matched + 1
            } else {
                usize::from(b == b'\r')
            };
            if self.matched == END.len() {
                self.matched = 0;
                self.since_end = 0;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_may_be_as_long_as_the_limit_and_no_longer() {
        let head = |len: usize| {
            let mut h = b"GET / HTTP/1.1\r\nX: ".to_vec();
            h.resize(len - 4, b'a');
            h.extend_from_slice(b"\r\n\r\n");
            h
        };
        // The blank line counts: a head of MAX_HEAD bytes passes.
        let mut limit = HeadLimit::default();
        assert!(limit.passes(&head(MAX_HEAD)));
        // Many heads in a row, each within the limit, in pieces split anywhere.
        let many = head(1000).repeat(100);
        let mut limit = HeadLimit::default();
        assert!(many.chunks(7).all(|piece| limit.passes(piece)));
        // One byte more, in one piece or in many.
        let over = head(MAX_HEAD + 1);
        assert!(!HeadLimit::default().passes(&over));
        let mut limit = HeadLimit::default();
        assert!(!over.chunks(3).all(|piece| limit.passes(piece)));
        // "\r\r\n\r\n" still ends a head.
        let mut limit = HeadLimit::default();
        let mut odd = b"GET / HTTP/1.1\r".to_vec();
        odd.extend_from_slice(b"\r\n\r\n");
        assert!(limit.passes(&odd));
        assert_eq!(limit.since_end, 0);
    }

    #[test]
    fn the_canned_answers_have_their_lengths_right() {
        for answer in [TOO_LARGE, TOO_MANY] {
            let text = std::str::from_utf8(answer).expect("ASCII");
            let (head, body) = text.split_once("\r\n\r\n").expect("a head");
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|l| l.parse().ok())
                .expect("a length");
            assert_eq!(body.len(), length, "{head}");
        }
    }

    fn door() -> Arc<Door> {
        let internal = UnixAddr::from_abstract_name(b"ecs_exporter/test/door").expect("a name");
        let logger = Logger {
            level: crate::log::Level::Error,
            format: crate::log::Format::Logfmt,
        };
        Arc::new(Door::new(internal, 0, Duration::from_secs(1), logger).expect("a pipe"))
    }

    /// Draining wakes every relay (the pipe's writing end goes) and waits for them to end, so
    /// that the last answers leave before the process does.
    #[test]
    fn drain_wakes_the_relays_and_waits_for_them() {
        let door = door();
        let relays: Vec<std::thread::JoinHandle<()>> = (0..3)
            .map(|_| {
                assert!(door.open.admit(0));
                let held = Held(Arc::clone(&door));
                std::thread::spawn(move || {
                    // A relay blocks until the door is drained (end of file on the pipe), then
                    // forwards what it has (here: a moment) and ends.
                    let mut drained = held.0.drained.try_clone().expect("the pipe");
                    let _ = drained.read(&mut [0u8; 1]);
                    std::thread::sleep(Duration::from_millis(50));
                    drop(held);
                })
            })
            .collect();
        door.drain(Duration::from_secs(10));
        assert_eq!(door.open.get(), 0, "returned before the relays ended");
        assert!(door.stop.load(Ordering::SeqCst));
        relays.into_iter().for_each(|r| r.join().expect("a relay"));
    }

    /// Two exporters in one network namespace can both be PID 1 of their containers: the second
    /// must take the next name instead of failing to start.
    #[test]
    fn a_taken_internal_name_makes_way_for_the_next() {
        let prefix = format!("ecs_exporter/{}/", std::process::id());
        let first = format!("{prefix}0");
        let address = UnixAddr::from_abstract_name(first.as_bytes()).expect("a name");
        // Held by "the other exporter" (or by another test here that took it first).
        let _taken = UnixListener::bind_addr(&address);
        let listener = internal_listener().expect("another name");
        let local = listener.local_addr().expect("an address");
        let name = local.as_abstract_name().expect("an abstract name");
        let name = String::from_utf8_lossy(name);
        assert!(name.starts_with(&prefix), "{name}");
        assert_ne!(name, first);
        assert!(UnixStream::connect_addr(&local).is_ok());
    }

    /// Once the door is stopped, the accept loop ends at the next connection instead of relaying
    /// it.
    #[test]
    fn a_stopped_door_accepts_no_more() {
        let door = door();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let address = listener.local_addr().expect("an address");
        let (done, ended) = std::sync::mpsc::channel();
        let accepting = Arc::clone(&door);
        std::thread::spawn(move || {
            accept(listener, accepting);
            let _ = done.send(());
        });
        door.stop();
        // accept blocks until a connection comes; this one wakes it (or is refused, if the loop
        // saw the stop before it first accepted and has closed the listener already).
        let _client = std::net::TcpStream::connect(address);
        assert!(
            ended.recv_timeout(Duration::from_secs(10)).is_ok(),
            "the accept loop went on after stop"
        );
        assert_eq!(door.open.get(), 0, "the connection was relayed");
    }
}
