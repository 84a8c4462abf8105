//! # Simple usage
//!
//! ## Creating the server
//!
//! The easiest way to create a server is to call `Server::http()`.
//!
//! The `http()` function returns an `IoResult<Server>` which will return an error
//! in the case where the server creation fails (for example if the listening port is already
//! occupied).
//!
//! ```no_run
//! let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! ```
//!
//! A newly-created `Server` will immediately start listening for incoming connections and HTTP
//! requests.
//!
//! ## Receiving requests
//!
//! Calling `server.recv()` will block until the next request is available.
//! This function returns an `IoResult<Request>`, so you need to handle the possible errors.
//!
//! ```no_run
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//!
//! loop {
//!     // blocks until the next request is received
//!     let request = match server.recv() {
//!         Ok(rq) => rq,
//!         Err(e) => { println!("error: {}", e); break }
//!     };
//!
//!     // do something with the request
//!     // ...
//! }
//! ```
//!
//! In a real-case scenario, you will probably want to spawn multiple worker tasks and call
//! `server.recv()` on all of them. Like this:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use std::thread;
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! let server = Arc::new(server);
//! let mut guards = Vec::with_capacity(4);
//!
//! for _ in (0 .. 4) {
//!     let server = server.clone();
//!
//!     let guard = thread::spawn(move || {
//!         loop {
//!             let rq = server.recv().unwrap();
//!
//!             // ...
//!         }
//!     });
//!
//!     guards.push(guard);
//! }
//! ```
//!
//! If you don't want to block, you can call `server.try_recv()` instead.
//!
//! ## Handling requests
//!
//! The `Request` object returned by `server.recv()` contains informations about the client's request.
//! The most useful methods are probably `request.method()` and `request.url()` which return
//! the requested method (`GET`, `POST`, etc.) and url.
//!
//! To handle a request, you need to create a `Response` object. See the docs of this object for
//! more infos. Here is an example of creating a `Response` from a file:
//!
//! ```no_run
//! # use std::fs::File;
//! # use std::path::Path;
//! let response = tiny_http::Response::from_file(File::open(&Path::new("image.png")).unwrap());
//! ```
//!
//! All that remains to do is call `request.respond()`:
//!
//! ```no_run
//! # use std::fs::File;
//! # use std::path::Path;
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! # let request = server.recv().unwrap();
//! # let response = tiny_http::Response::from_file(File::open(&Path::new("image.png")).unwrap());
//! let _ = request.respond(response);
//! ```
//!
//! # This copy
//!
//! CHANGED by the ecs_exporter project (Apache-2.0 4(b)): each connection is served by a thread
//! of its own, which reads one bounded request at a time, body included, hands it to
//! [`Server::recv`], and writes the answer that [`Request::respond`] gives it; a connection cap,
//! read and write deadlines, and an accept loop that never ends. What changed and why, fault by
//! fault, with the text for upstream: PATCHES.md.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![allow(clippy::match_like_matches_macro)]
// Lints that today's clippy finds in code kept as published (common.rs, response.rs): left as
// they are, so that the difference from upstream is only what PATCHES.md fixes.
#![allow(
    clippy::doc_overindented_list_items,
    clippy::needless_borrow,
    clippy::unnecessary_map_or
)]

use std::error::Error;
use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use connection::Connection;
use util::MessagesQueue;

pub use common::{HTTPVersion, Header, HeaderField, Method, StatusCode};
pub use connection::{ConfigListenAddr, ListenAddr, Listener};
pub use request::Request;
pub use response::{Response, ResponseBox};

mod client;
mod common;
mod connection;
mod request;
mod response;
mod util;

/// The main class of this library.
///
/// Dropping it stops accepting connections; requests already returned by `recv()` are still
/// answered. [`Server::shutdown`] and [`Server::wait_answered`] make a graceful stop.
pub struct Server {
    shared: Arc<Shared>,
    /// Where each listener listens, in the order given.
    listening_addrs: Vec<ListenAddr>,
}

/// What the accept threads, the connection threads and the server share.
pub(crate) struct Shared {
    /// Set once: accept nothing more, read no new request.
    closing: AtomicBool,
    /// Requests read and not yet taken by `recv()`.
    messages: Arc<MessagesQueue<Request>>,
    pub(crate) limits: Limits,
    connections: Mutex<Connections>,
    /// Signalled when a connection goes idle or away.
    changed: Condvar,
}

/// The connections held, for the cap and for a graceful stop.
#[derive(Default)]
struct Connections {
    next_id: u64,
    held: Vec<Held>,
}

struct Held {
    id: u64,
    /// What it is doing, and since when.
    phase: Phase,
    /// To close it from another thread (the one descriptor stays with its thread).
    connection: Weak<Connection>,
}

/// Where a connection is in its loop. The cap makes room by closing one: first one waiting for
/// a request, then one sending one (slowly: it has had its chance), then one taking an answer
/// (slowly); never one whose request is being handled, whose answer the server owes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Idle(Instant),
    Reading(Instant),
    Writing(Instant),
    Handled,
}

impl Connections {
    fn find(&mut self, id: u64) -> Option<&mut Held> {
        self.held.iter_mut().find(|held| held.id == id)
    }

    /// Closes one of the connections in a phase `may_close` allows, if any: of the first such
    /// phase any is in (idle, reading, writing), the one that entered it first.
    fn close_first(&mut self, may_close: fn(&Phase) -> bool) -> bool {
        let victim = self
            .held
            .iter()
            .enumerate()
            .filter(|(_, held)| may_close(&held.phase))
            .min_by_key(|(_, held)| held.phase)
            .map(|(index, _)| index);
        match victim {
            Some(index) => {
                let held = self.held.swap_remove(index);
                if let Some(connection) = held.connection.upgrade() {
                    let _ = connection.shutdown(Shutdown::Both);
                }
                true
            }
            None => false,
        }
    }
}

/// What one client may make the server hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest request head (request line, headers and the blank line), in bytes: past it
    /// the client gets `431` and the connection is closed.
    pub max_head: usize,
    /// The longest request body, declared or chunked, in bytes: past it the client gets `413`
    /// and the connection is closed. A body is read whole before the request is handed over, so
    /// this is also what one request may hold in memory.
    pub max_body: usize,
    /// Connections held at once (0: no limit). A new one at the cap closes another to make
    /// room: the one that has waited longest for a request, else the one that has taken longest
    /// to send its request, else the one that has taken longest to take its answer; only when
    /// every held connection has a request being handled does the new one get `503`.
    pub max_connections: usize,
    /// How long a connection may wait for a request, take to send one once begun, or take to
    /// accept its answer (`None`: for ever).
    pub timeout: Option<Duration>,
}

impl Default for Limits {
    /// Generous enough for the uses tiny_http had: 64 KiB heads, 1 MiB bodies, no cap and no
    /// timeout.
    fn default() -> Limits {
        Limits {
            max_head: 64 * 1024,
            max_body: 1024 * 1024,
            max_connections: 0,
            timeout: None,
        }
    }
}

// Server must stay Sync and Send: a compile-time check.
const _: fn() = || {
    fn sync_and_send<T: Sync + Send>() {}
    sync_and_send::<Server>();
};

pub struct IncomingRequests<'a> {
    server: &'a Server,
}

/// Represents the parameters required to create a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The addresses to try to listen to.
    pub addr: ConfigListenAddr,

    /// Must be `None`: this copy serves plain HTTP only.
    pub ssl: Option<SslConfig>,
}

/// Configuration of the server for SSL (not supported by this copy).
#[derive(Debug, Clone)]
pub struct SslConfig {
    /// Contains the public certificate to send to clients.
    pub certificate: Vec<u8>,
    /// Contains the ultra-secret private key used to decode communications.
    pub private_key: Vec<u8>,
}

/// How long an accept thread waits after a failed accept (out of descriptors, say): as Go's
/// net/http, 5 ms doubling to 1 s, so that it neither spins nor gives up.
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A connection thread's stack: it parses heads and writes answers, nothing deep.
const CONNECTION_STACK: usize = 256 * 1024;

impl Server {
    /// Shortcut for a simple server on a specific address.
    #[inline]
    pub fn http<A>(addr: A) -> Result<Server, Box<dyn Error + Send + Sync + 'static>>
    where
        A: ToSocketAddrs,
    {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::from_socket_addrs(addr)?,
            ssl: None,
        })
    }

    #[cfg(unix)]
    #[inline]
    /// Shortcut for a UNIX socket server at a specific path
    pub fn http_unix(
        path: &std::path::Path,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::unix_from_path(path),
            ssl: None,
        })
    }

    /// Builds a new server that listens on the specified address.
    pub fn new(config: ServerConfig) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        let listener = config.addr.bind()?;
        Self::from_listener(listener, config.ssl)
    }

    /// Builds a new server using the specified listener, with the default [`Limits`].
    pub fn from_listener<L: Into<Listener>>(
        listener: L,
        ssl_config: Option<SslConfig>,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        if ssl_config.is_some() {
            return Err("this copy of tiny_http serves plain HTTP only".into());
        }
        Ok(Self::from_listeners(
            vec![listener.into()],
            Limits::default(),
        )?)
    }

    /// Builds a server that accepts on every listener (a thread each) and serves them all as
    /// one: one queue of requests, one connection cap. Fails if a thread cannot be started.
    pub fn from_listeners(listeners: Vec<Listener>, limits: Limits) -> IoResult<Server> {
        let shared = Arc::new(Shared {
            closing: AtomicBool::new(false),
            messages: MessagesQueue::with_capacity(8),
            limits,
            connections: Mutex::new(Connections::default()),
            changed: Condvar::new(),
        });
        let mut listening_addrs = Vec::with_capacity(listeners.len());
        for listener in listeners {
            listening_addrs.push(listener.local_addr()?);
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("http-accept".into())
                .stack_size(CONNECTION_STACK)
                .spawn(move || accept(listener, shared))?;
        }
        Ok(Server {
            shared,
            listening_addrs,
        })
    }

    /// Returns an iterator for all the incoming requests.
    ///
    /// The iterator will return `None` if the server socket is shutdown.
    #[inline]
    pub fn incoming_requests(&self) -> IncomingRequests<'_> {
        IncomingRequests { server: self }
    }

    /// Returns the address the server is listening to (the first listener's).
    #[inline]
    pub fn server_addr(&self) -> ListenAddr {
        self.listening_addrs[0].clone()
    }

    /// Returns the number of clients currently connected to the server.
    pub fn num_connections(&self) -> usize {
        self.shared.connections().held.len()
    }

    /// Blocks until an HTTP request has been submitted and returns it.
    pub fn recv(&self) -> IoResult<Request> {
        match self.shared.messages.pop() {
            Some(rq) => Ok(rq),
            None => Err(IoError::other("thread unblocked")),
        }
    }

    /// Same as `recv()` but doesn't block longer than timeout
    pub fn recv_timeout(&self, timeout: Duration) -> IoResult<Option<Request>> {
        Ok(self.shared.messages.pop_timeout(timeout))
    }

    /// Same as `recv()` but doesn't block.
    pub fn try_recv(&self) -> IoResult<Option<Request>> {
        Ok(self.shared.messages.try_pop())
    }

    /// Unblock thread stuck in recv() or incoming_requests().
    /// If there are several such threads, only one is unblocked.
    /// This method allows graceful shutdown of server.
    pub fn unblock(&self) {
        self.shared.messages.unblock();
    }

    /// Begins a graceful stop: no new connection is served, connections waiting for or sending
    /// a request are closed, and each other one once its answer is written.
    pub fn shutdown(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        let mut connections = self.shared.connections();
        // Those that have not handed a request over yet: nothing is owed to them.
        while connections.close_first(|phase| matches!(phase, Phase::Idle(_) | Phase::Reading(_))) {
        }
        self.shared.changed.notify_all();
    }

    /// Closes the connection that has been taking its answer longest, if any is taking one:
    /// for a server whose answers waiting to be read hold too much memory, to shed the slowest
    /// reader first. True if one was closed.
    pub fn close_oldest_writer(&self) -> bool {
        let mut connections = self.shared.connections();
        connections.close_first(|phase| matches!(phase, Phase::Writing(_)))
    }

    /// After [`Server::shutdown`]: waits up to `patience` until every request read has been
    /// answered and written, handing `answer` any request still arriving (read before the
    /// shutdown, not yet taken). True if all were written in time.
    pub fn wait_answered(&self, patience: Duration, mut answer: impl FnMut(Request)) -> bool {
        let deadline = Instant::now() + patience;
        loop {
            while let Some(request) = self.shared.messages.try_pop() {
                answer(request);
            }
            let connections = self.shared.connections();
            if connections
                .held
                .iter()
                .all(|held| matches!(held.phase, Phase::Idle(_)))
            {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wait = (deadline - now).min(Duration::from_millis(10));
            drop(
                self.shared
                    .changed
                    .wait_timeout(connections, wait)
                    .unwrap_or_else(PoisonError::into_inner),
            );
        }
    }
}

impl Shared {
    fn connections(&self) -> MutexGuard<'_, Connections> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    pub(crate) fn push(&self, request: Request) {
        self.messages.push(request);
    }

    /// Records where a connection is. False if it must end: it was closed to make room for
    /// another, or the server is stopping and it is idle.
    pub(crate) fn set_phase(&self, id: u64, phase: Phase) -> bool {
        let closing = self.closing();
        let mut connections = self.connections();
        let held = match connections.find(id) {
            Some(held) => held,
            None => return false,
        };
        // A new connection is idle from when it was accepted, not from when its thread ran.
        if !matches!((held.phase, phase), (Phase::Idle(_), Phase::Idle(_))) {
            held.phase = phase;
        }
        drop(connections);
        let idle = matches!(phase, Phase::Idle(_));
        if idle {
            self.changed.notify_all();
        }
        !(idle && closing)
    }

    /// Forgets a connection whose thread ends.
    pub(crate) fn forget(&self, id: u64) {
        let mut connections = self.connections();
        connections.held.retain(|held| held.id != id);
        drop(connections);
        self.changed.notify_all();
    }

    /// Takes a new connection: counts it (closing the oldest idle one at the cap) and starts its
    /// thread, or answers `503` and closes it when every held connection is busy.
    fn admit(self: &Arc<Shared>, connection: Connection) {
        let connection = Arc::new(connection);
        let id = {
            let mut connections = self.connections();
            let max = self.limits.max_connections;
            if max != 0
                && connections.held.len() >= max
                && !connections.close_first(|phase| *phase != Phase::Handled)
            {
                drop(connections);
                client::refuse(&connection);
                return;
            }
            connections.next_id += 1;
            let id = connections.next_id;
            connections.held.push(Held {
                id,
                phase: Phase::Idle(Instant::now()),
                connection: Arc::downgrade(&connection),
            });
            id
        };
        let shared = Arc::clone(self);
        let started = thread::Builder::new()
            .name("http-connection".into())
            .stack_size(CONNECTION_STACK)
            .spawn(move || client::serve(&connection, id, &shared));
        if started.is_err() {
            // The connection went with the closure: closed. Nothing else holds it.
            self.forget(id);
        }
    }
}

/// Accepts until the server is dropped or shut down. A failed accept is retried after a
/// growing pause; it never ends the thread, so the server keeps serving once descriptors free
/// up.
fn accept(listener: Listener, shared: Arc<Shared>) {
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = listener.accept();
        if shared.closing() {
            return;
        }
        match accepted {
            Ok((connection, _)) => {
                backoff = Duration::ZERO;
                shared.admit(connection);
            }
            Err(e) => {
                log::debug!("Error accepting new client: {}", e);
                backoff = (backoff * 2).clamp(ACCEPT_BACKOFF_FIRST, ACCEPT_BACKOFF_MAX);
                thread::sleep(backoff);
            }
        }
    }
}

impl Iterator for IncomingRequests<'_> {
    type Item = Request;
    fn next(&mut self) -> Option<Request> {
        self.server.recv().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
        // Connect briefly to each listener to unblock its accept thread. An abstract Unix socket
        // has no path to connect to: its thread ends with the next connection.
        for addr in &self.listening_addrs {
            let maybe_stream = match addr {
                ListenAddr::IP(addr) => TcpStream::connect(addr).map(Connection::from),
                #[cfg(unix)]
                ListenAddr::Unix(addr) => match addr.as_pathname() {
                    Some(path) => {
                        std::os::unix::net::UnixStream::connect(path).map(Connection::from)
                    }
                    None => continue,
                },
            };
            if let Ok(stream) = maybe_stream {
                let _ = stream.shutdown(Shutdown::Both);
            }
            #[cfg(unix)]
            if let ListenAddr::Unix(addr) = addr {
                if let Some(path) = addr.as_pathname() {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}
