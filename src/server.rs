//! The HTTP side: the listening sockets, the patched tiny_http server behind them
//! (vendor/tiny_http: a thread per connection that alone reads and writes it, bounded heads and
//! bodies, a connection cap that closes the oldest idle connection, deadlines), scrapes answered
//! one at a time by one loop on the main thread, everything else at once by the listener thread.
//!
//! `/health`, `/`, 404 and 405 are answered right on the listener thread, so that they never wait
//! behind a scrape (a slow agent must not make the container health check fail). Metrics requests
//! go to the loop, in order, through a queue (`Shared::send`); beyond `--web.max-requests` waiting
//! or in progress they are answered 503 at once, so that a slow endpoint cannot pile up scrapes
//! behind it. Answering hands the response to the connection's own thread, which writes it: a
//! client that never reads holds only its own connection, never the loop or the listener. A
//! scrape whose client has gone gets no fetch. After SIGTERM, the fetch in flight is abandoned,
//! every waiting scrape gets 503 at once, and the process waits (up to half a second) for the
//! last answers to be written. Nothing a client sends can end the loop.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tiny_http::{Header, Limits, Method, Request, Response, StatusCode};

use crate::collect::Answered;
use crate::config::Config;
use crate::exposition::Exposition;
use crate::log::Logger;
use crate::scrape::{Abandon, Scraper, Serving};
use crate::{log, version};

/// As client_golang 1.21's promhttp sends it (the escaping parameter says that names outside
/// the legacy character set would be escaped with underscores; ours never are).
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores";
const TEXT: &str = "text/plain; charset=utf-8";

/// The longest request head a client may send (request line, headers, blank line): past it, 431
/// and the connection is closed. Go's net/http allows 1 MB; Prometheus sends a few hundred bytes.
pub const MAX_HEAD: usize = 16 * 1024;

/// The longest request body: nothing the exporter serves reads one, so a small bound, past which
/// a client gets 413 (declared or chunked) without a byte of it being allocated.
pub const MAX_BODY: usize = 16 * 1024;

/// Descriptors the exporter keeps besides its client connections: standard streams, listeners,
/// the two metadata requests of a scrape, `/proc` files, with room to spare.
const OTHER_DESCRIPTORS: u64 = 32;

/// The connection cap that fits `open_files` descriptors: `max` (0: no limit) or fewer, so that
/// the cap, which makes room by closing a connection, is reached before accepting fails for want
/// of descriptors (which makes no room: new clients would wait until someone leaves).
pub fn connections_within(max: usize, open_files: u64) -> usize {
    let room = open_files.saturating_sub(OTHER_DESCRIPTORS).max(1);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if max == 0 { room } else { max.min(room) }
}

/// The least that answers handed to connections and not yet read may hold in all; at least four
/// times the answer being handed over. Past it, the connection that has been taking its answer
/// longest is closed (docs/design.md, "Clients"): a client that never reads would otherwise keep
/// a whole answer alive until the write deadline, a few MB each in instance scope.
const UNREAD_ANSWERS: usize = 1 << 20;

/// A response that could not be handed to its connection (the client had gone): worth a debug
/// line only.
fn log_failed_write(logger: Logger, result: std::io::Result<()>) {
    if let Err(e) = result {
        log!(logger, Debug, "writing a response failed", "error" = &e);
    }
}

/// What a metrics request gets once the exporter is stopping.
const SHUTTING_DOWN: &[u8] = b"503 shutting down\n";

/// How many readers one answer may close to make room, and how long it waits for each to let
/// go of its answer: the loop is held at most their product, reached only when the machine
/// gives the closed connections' threads no core. One lets go within microseconds when it gets
/// a core; the wait is for a machine whose cores are busy (20 ms, then 100 ms, let answers pile
/// up past the budget on CI's two cores while a build ran beside the test).
const CLOSED_FOR_ROOM: usize = 16;
const LETTING_GO: Duration = Duration::from_secs(1);

pub struct Server {
    shared: Arc<Shared>,
    /// The addresses listened on, in the order given, for the start-up lines.
    addresses: Vec<String>,
    config: Config,
    logger: Logger,
}

/// What the loop, the listener thread and the shutdown handle share.
struct Shared {
    stop: AtomicBool,
    http: tiny_http::Server,
    counters: Counters,
    /// What the listeners and the shutdown handle hand to the loop, in order. (A Mutex and a
    /// Condvar, which tiny_http links anyway, rather than std's channel, which links more code:
    /// docs/footprint.md.)
    events: Mutex<VecDeque<Event>>,
    ready: Condvar,
    /// `/`, built once.
    landing_page: &'static str,
    /// Ends the loop's wait for a fetch in flight, at shutdown.
    abandon: Abandon,
}

/// The exporter's counts of metrics requests, for its own metrics.
#[derive(Default)]
struct Counters {
    /// Answered 200.
    ok: AtomicU64,
    /// Answered 503: over `--web.max-requests`, or queued at shutdown.
    unavailable: AtomicU64,
    /// Metrics requests received and not yet answered: counted in when a listener admits one,
    /// out when it has been answered, whichever way.
    in_flight: Capped,
    /// Bytes of the answers handed to connections and not yet read (or let go of).
    unread: Arc<AtomicUsize>,
}

impl Counters {
    fn serving(&self, arrived: Instant) -> Serving {
        Serving {
            arrived,
            answered: Answered {
                ok: self.ok.load(Ordering::SeqCst),
                unavailable: self.unavailable.load(Ordering::SeqCst),
            },
            in_flight: self.in_flight.get() as u64,
        }
    }
}

/// A count with a cap: the metrics requests in flight.
#[derive(Debug, Default)]
struct Capped(AtomicUsize);

impl Capped {
    /// Counts one more, unless that would pass `max` (0: no limit).
    fn admit(&self, max: usize) -> bool {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (max == 0 || n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Counts one fewer.
    fn done(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn send(&self, event: Event) {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        events.push_back(event);
        self.ready.notify_one();
    }

    fn next(&self) -> Event {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match events.pop_front() {
                Some(event) => return event,
                None => {
                    events = self
                        .ready
                        .wait(events)
                        .unwrap_or_else(PoisonError::into_inner)
                }
            }
        }
    }

    /// A metrics request that will not be scraped: 503 at once, counted.
    fn unavailable(&self, request: Request, why: &'static [u8]) {
        self.counters.unavailable.fetch_add(1, Ordering::SeqCst);
        let _ = respond(request, 503, TEXT, why, &[]);
    }
}

enum Event {
    /// A metrics request, admitted (counted in flight), and when.
    Scrape(Request, Instant),
    Stop,
}

/// Listening, or starting the threads that serve, failed.
#[derive(Debug)]
pub struct StartError {
    /// What could not be done: the address, or what stood for it.
    pub what: String,
    pub cause: Box<dyn std::error::Error + Send + Sync>,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.cause)
    }
}

impl std::error::Error for StartError {}

impl Server {
    /// Listens on every address of the configuration, or takes the sockets systemd passed, and
    /// starts the tiny_http server behind them.
    pub fn bind(config: Config) -> Result<Server, StartError> {
        let mut listeners = Vec::new();
        if config.systemd_socket {
            let pid = std::env::var("LISTEN_PID").ok();
            let fds = std::env::var("LISTEN_FDS").ok();
            listeners =
                crate::sys::systemd_listeners(pid.as_deref(), fds.as_deref()).map_err(|e| {
                    StartError {
                        what: "cannot listen on systemd socket activation listeners".into(),
                        cause: Box::new(e),
                    }
                })?;
        } else {
            for address in &config.listen {
                let port = address.port;
                let listener = if address.host.is_empty() {
                    // All interfaces: IPv6 and IPv4 where the kernel has IPv6, else IPv4 alone.
                    TcpListener::bind(("::", port))
                        .or_else(|_| TcpListener::bind(("0.0.0.0", port)))
                } else {
                    TcpListener::bind((address.host.as_str(), port))
                };
                let listener = listener
                    .and_then(|l| crate::sys::listen_at_most(&l).map(|()| l))
                    .map_err(|cause| StartError {
                        what: format!("cannot listen on {address}"),
                        cause: Box::new(cause),
                    })?;
                listeners.push(listener);
            }
        }
        let addresses = listeners
            .iter()
            .map(|l| {
                l.local_addr()
                    .map_or_else(|e| e.to_string(), |a| a.to_string())
            })
            .collect();
        let limits = Limits {
            max_head: MAX_HEAD,
            max_body: MAX_BODY,
            max_connections: config.max_connections,
            timeout: Some(config.idle_timeout),
        };
        let listeners = listeners
            .into_iter()
            .map(tiny_http::Listener::from)
            .collect();
        let http =
            tiny_http::Server::from_listeners(listeners, limits).map_err(|cause| StartError {
                what: "cannot start serving".into(),
                cause: Box::new(cause),
            })?;
        Ok(Server {
            shared: Arc::new(Shared {
                stop: AtomicBool::new(false),
                http,
                counters: Counters::default(),
                events: Mutex::new(VecDeque::new()),
                ready: Condvar::new(),
                // Built once and kept for the life of the process: answers hand it to connection
                // threads, which need it for as long as they may run.
                landing_page: Box::leak(landing_page(&config.telemetry_path).into_boxed_str()),
                abandon: Abandon::default(),
            }),
            addresses,
            logger: config.logger,
            config,
        })
    }

    /// A handle that ends [`Server::run`] from another thread.
    pub fn shutdown_handle(&self) -> Shutdown {
        Shutdown {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Serves requests until [`Shutdown::shutdown`] is called, which abandons the fetch in hand
    /// (its scrape and every waiting one get 503). Fails, before anything is served, if a
    /// thread cannot be started.
    pub fn run(self) -> Result<(), StartError> {
        // The two lines the Go exporter starts with (exporter-toolkit's), per listener, so that
        // log-based start-up checks keep working.
        for address in &self.addresses {
            log!(self.logger, Info, "Listening on", "address" = address);
            log!(
                self.logger,
                Info,
                "TLS is disabled.",
                "http2" = false,
                "address" = address
            );
        }
        let b = &version::BUILD;
        log!(
            self.logger,
            Info,
            "Starting ecs_exporter",
            "version" = b.version,
            "revision" = b.revision,
            "telemetry_path" = &self.config.telemetry_path,
            "metadata" = &self.config.metadata,
        );
        if self.config.scope == crate::tmds::Scope::Instance {
            let (tasks, stats) = self.config.scope.endpoints();
            log!(
                self.logger,
                Info,
                "instance scope: every task on the instance, each labelled with its task_arn",
                "tasks" = &tasks,
                "stats" = &stats,
            );
        }
        let thread_failed = |cause: std::io::Error| StartError {
            what: "cannot start a thread".into(),
            cause: Box::new(cause),
        };
        let mut scraper =
            Scraper::start(self.config.clone(), &self.shared.abandon).map_err(thread_failed)?;
        let listener = Listener {
            shared: Arc::clone(&self.shared),
            logger: self.logger,
            telemetry_path: self.config.telemetry_path.clone(),
            max_requests: self.config.max_requests,
        };
        spawn("listener".into(), 128, move || listener.run()).map_err(thread_failed)?;

        let counters = &self.shared.counters;
        let compressors = crate::gzip::Pool::default();
        while let Event::Scrape(request, arrived) = self.shared.next() {
            // Each request is counted out of flight once its answer is ready, before it is
            // handed to the connection: a client that sends its next request as soon as it
            // has the answer must not find its last one still counted.
            let why = if self.shared.stopping() {
                SHUTTING_DOWN
            } else if request.client_gone() {
                // Nobody to answer: no fetch for it (the answer goes nowhere).
                b"503 the client has gone\n"
            } else {
                match scraper.scrape(counters.serving(arrived)) {
                    Some(answer) => {
                        self.answer(request, answer, &compressors);
                        continue;
                    }
                    // The fetch in hand was abandoned: shutdown.
                    None => SHUTTING_DOWN,
                }
            };
            counters.in_flight.done();
            self.shared.unavailable(request, why);
        }
        // Every answer is handed over; wait (half a second at most, so that SIGTERM ends the
        // process within a second whatever the agent and the clients do) for the
        // connections to write them, answering any request read just before the stop as the
        // listener thread would have.
        let listener = Listener {
            shared: Arc::clone(&self.shared),
            logger: self.logger,
            telemetry_path: self.config.telemetry_path.clone(),
            max_requests: self.config.max_requests,
        };
        self.shared
            .http
            .wait_answered(Duration::from_millis(500), |request| listener.take(request));
        log!(self.logger, Info, "stopped");
        Ok(())
    }
}

impl Server {
    /// Answers a scrape with its exposition (gzipped when the request allows it), counted out
    /// of flight once ready and counted as answered once handed over.
    fn answer(&self, request: Request, answer: &mut Exposition, compressors: &crate::gzip::Pool) {
        let counters = &self.shared.counters;
        // As promhttp: gzip when the request allows it (gzip.rs).
        let encoding = crate::gzip::negotiate(
            request
                .headers()
                .iter()
                .filter(|h| h.field.equiv("Accept-Encoding"))
                .map(|h| h.value.as_str()),
        );
        let length = answer.len();
        self.make_room_for(length);
        let body = Unread::new(answer.take(), length, &counters.unread);
        let vary = ("Vary", "Accept-Encoding");
        counters.in_flight.done();
        let result = match encoding {
            crate::gzip::Encoding::Identity => respond_with(
                request,
                200,
                METRICS_CONTENT_TYPE,
                (body, Some(length)),
                &[vary],
            ),
            // Compressed as it is written: no length ahead (HTTP/1.1 gets it chunked).
            crate::gzip::Encoding::Gzip => respond_with(
                request,
                200,
                METRICS_CONTENT_TYPE,
                (crate::gzip::Gzip::new(body, compressors), None),
                &[("Content-Encoding", "gzip"), vary],
            ),
        };
        log!(
            self.logger,
            Debug,
            "metrics answered",
            "encoding" = encoding.name()
        );
        // Counted after answering, as promhttp does: a scrape sees the ones before it.
        counters.ok.fetch_add(1, Ordering::SeqCst);
        log_failed_write(self.logger, result);
    }

    /// Before an answer of `length` bytes is handed over: while the answers not yet read would
    /// pass the budget with it, closes the connection that has been taking its answer longest
    /// and waits a moment for it to let go (a bounded number of times).
    fn make_room_for(&self, length: usize) {
        let unread = &self.shared.counters.unread;
        let budget = UNREAD_ANSWERS.max(length.saturating_mul(4));
        let mut closed = 0;
        while unread.load(Ordering::SeqCst) + length > budget
            && closed < CLOSED_FOR_ROOM
            && self.shared.http.close_oldest_writer()
        {
            closed += 1;
            let before = unread.load(Ordering::SeqCst);
            let started = std::time::Instant::now();
            while unread.load(Ordering::SeqCst) >= before && started.elapsed() < LETTING_GO {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if closed > 0 {
            log!(
                self.logger,
                Debug,
                "closed the connections slowest to read their answers, to make room",
                "closed" = closed as u64,
                "unread_bytes" = unread.load(Ordering::SeqCst) as u64
            );
        }
    }
}

/// An answer's body, counted in [`Counters::unread`] until the connection lets go of it.
struct Unread<R> {
    body: R,
    length: usize,
    unread: Arc<AtomicUsize>,
}

impl<R> Unread<R> {
    fn new(body: R, length: usize, unread: &Arc<AtomicUsize>) -> Unread<R> {
        unread.fetch_add(length, Ordering::SeqCst);
        Unread {
            body,
            length,
            unread: Arc::clone(unread),
        }
    }
}

impl<R: std::io::Read> std::io::Read for Unread<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.body.read(buf)
    }
}

impl<R> Drop for Unread<R> {
    fn drop(&mut self) {
        self.unread.fetch_sub(self.length, Ordering::SeqCst);
    }
}

/// Starts a named thread with a small stack (KiB).
fn spawn(name: String, stack_kib: usize, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name)
        .stack_size(stack_kib * 1024)
        .spawn(f)
        .map(drop)
}

/// Takes the tiny_http server's requests: answers all but scrapes at once, hands scrapes to the
/// loop.
struct Listener {
    shared: Arc<Shared>,
    logger: Logger,
    telemetry_path: String,
    max_requests: usize,
}

impl Listener {
    fn run(self) {
        // recv fails only once the server is unblocked at shutdown.
        while let Ok(request) = self.shared.http.recv() {
            self.take(request);
        }
    }

    fn take(&self, request: Request) {
        let route = Route::of(&request, &self.telemetry_path);
        let allowed = matches!(request.method(), Method::Get | Method::Head);
        let result = match route {
            Route::NotFound => respond(request, 404, TEXT, b"404 page not found\n", &[]),
            _ if !allowed => respond(
                request,
                405,
                TEXT,
                b"405 method not allowed\n",
                &[("Allow", "GET, HEAD")],
            ),
            Route::Health => respond(request, 200, TEXT, b"ok", &[]),
            Route::Landing => respond(
                request,
                200,
                "text/html; charset=utf-8",
                self.shared.landing_page.as_bytes(),
                &[],
            ),
            Route::Metrics => {
                let shared = &self.shared;
                if shared.stopping() {
                    shared.unavailable(request, SHUTTING_DOWN);
                } else if shared.counters.in_flight.admit(self.max_requests) {
                    shared.send(Event::Scrape(request, Instant::now()));
                } else {
                    shared.unavailable(request, b"503 too many metrics requests in flight\n");
                }
                Ok(())
            }
        };
        log_failed_write(self.logger, result);
    }
}

/// Ends the server loop: set the flag, wake the listener thread, and tell the loop after the
/// scrapes already handed to it (which it answers 503 once the flag is set).
pub struct Shutdown {
    shared: Arc<Shared>,
}

impl Shutdown {
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.abandon.abandon();
        self.shared.http.shutdown();
        self.shared.http.unblock();
        self.shared.send(Event::Stop);
    }
}

#[derive(Clone, Copy)]
enum Route {
    Metrics,
    Health,
    Landing,
    NotFound,
}

impl Route {
    /// The route of a request's path; the query string does not count, nor the scheme and host
    /// of an absolute target (`GET http://host/metrics`, as a proxy sends it and Go routes it).
    fn of(request: &Request, telemetry_path: &str) -> Route {
        let target = request.url();
        let path = match target.split_once("://") {
            Some((_, rest)) if !target.starts_with('/') => {
                rest.find('/').and_then(|at| rest.get(at..)).unwrap_or("/")
            }
            _ => target,
        };
        match path.split('?').next().unwrap_or("") {
            path if path == telemetry_path => Route::Metrics,
            "/health" => Route::Health,
            "/" => Route::Landing,
            _ => Route::NotFound,
        }
    }
}

fn respond(
    request: Request,
    code: u16,
    content_type: &str,
    body: &'static [u8],
    extra: &[(&str, &str)],
) -> std::io::Result<()> {
    respond_with(request, code, content_type, (body, Some(body.len())), extra)
}

/// [`respond`] with a body read from `body.0`, of `body.1` bytes if known ahead. The
/// connection's thread reads and writes it, after this has returned.
fn respond_with(
    request: Request,
    code: u16,
    content_type: &str,
    body: (impl std::io::Read + Send + 'static, Option<usize>),
    extra: &[(&str, &str)],
) -> std::io::Result<()> {
    let headers = std::iter::once(("Content-Type", content_type))
        .chain(extra.iter().copied())
        .filter_map(|(name, value)| Header::from_bytes(name.as_bytes(), value.as_bytes()).ok())
        .collect();
    let response = Response::new(StatusCode(code), headers, body.0, body.1, None);
    request.respond(response)
}

fn landing_page(telemetry_path: &str) -> String {
    let mut path = String::new();
    for c in telemetry_path.chars() {
        match c {
            '&' => path.push_str("&amp;"),
            '<' => path.push_str("&lt;"),
            '>' => path.push_str("&gt;"),
            '"' => path.push_str("&quot;"),
            c => path.push(c),
        }
    }
    let b = &version::BUILD;
    format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>ecs_exporter</title></head>\n\
         <body>\n<h1>ecs_exporter</h1>\n<p>Prometheus Exporter for ECS</p>\n\
         <p>version {} (revision {}, rust {})</p>\n\
         <ul>\n<li><a href=\"{path}\">Metrics</a></li>\n<li><a href=\"/health\">Health</a></li>\n</ul>\n\
         </body>\n</html>\n",
        b.version, b.revision, b.rustversion
    )
}

#[cfg(test)]
mod tests {
    use super::connections_within;

    #[test]
    fn the_connection_cap_fits_the_open_files_limit() {
        assert_eq!(connections_within(256, 1_048_576), 256);
        assert_eq!(connections_within(256, 64), 32);
        assert_eq!(connections_within(256, 288), 256);
        assert_eq!(connections_within(256, 287), 255);
        assert_eq!(connections_within(0, 1024), 992);
        assert_eq!(connections_within(256, 10), 1);
        assert_eq!(connections_within(0, u64::MAX), usize::MAX - 32);
    }
}
