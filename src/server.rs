//! The HTTP side: tiny_http servers, one per listen address, answered by one loop on the main
//! thread.
//!
//! The failure policy, stated once: a scrape always answers 200 with whatever the metadata that
//! did arrive supports, `ecs_up` says whether all of it arrived, and each failed metadata request
//! is logged as a warning naming the endpoint and the failure. Nothing a client or the endpoint
//! sends can end the loop. Metrics requests beyond `--web.max-requests` waiting or in progress
//! are answered 503 at once, so a slow endpoint cannot pile up scrapes behind it.
//!
//! Each tiny_http server reads requests on threads of its own; a small forwarder thread per
//! server hands complete requests to the loop over a channel (tiny_http cannot wait on several
//! servers at once), applies the in-flight limit, and listens again if the accept thread dies.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tiny_http::{Header, Method, Request, Response, StatusCode};

use crate::cli::Config;
use crate::collect::{self, Exporter, FAMILIES, Scrape};
use crate::log::{self as logging, Level, Logger};
use crate::model::{self, DecodeError, TaskMetadata, TaskStats};
use crate::tmds::{self, Endpoint, FetchError};
use crate::{exposition, log, process, version};

/// As client_golang 1.21's promhttp sends it (the escaping parameter says that names outside
/// the legacy character set would be escaped with underscores; ours never are).
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores";

/// The status codes client_golang's promhttp counts from the start, so that dashboards which
/// select `code="500"` find a series. 200 and 503 (over `--web.max-requests`) occur; 500 never:
/// a scrape never fails as a whole.
const COUNTED_CODES: [&str; 3] = ["200", "500", "503"];

pub struct Server {
    shared: Arc<Shared>,
    config: Config,
    logger: Logger,
    landing_page: String,
    start_time_seconds: Option<f64>,
    /// The exposition text, reused from scrape to scrape.
    body: String,
    /// The last metadata fetch, kept for `--ecs.min-refresh-interval`.
    last: Option<Fetched>,
    /// Fetches `/task/stats` while the loop fetches `/task` (started by [`Server::run`]).
    stats_fetcher: Option<Arc<StatsFetcher>>,
}

/// A long-lived thread that fetches `/task/stats` at the loop's request, so that a scrape costs
/// one round trip to the endpoint instead of two in a row (minreq opens a connection per
/// request; the endpoint may be slow to take one). One thread for the exporter's life, not one
/// per scrape.
struct StatsFetcher {
    job: Mutex<StatsJob>,
    changed: Condvar,
}

enum StatsJob {
    Idle,
    Requested,
    Done(Option<TaskStats>),
}

impl StatsFetcher {
    fn request(&self) {
        *self.job.lock().unwrap_or_else(PoisonError::into_inner) = StatsJob::Requested;
        self.changed.notify_all();
    }

    /// Waits for the requested fetch to finish (it has its own deadline, `--ecs.timeout`).
    fn result(&self) -> Option<TaskStats> {
        let mut job = self.job.lock().unwrap_or_else(PoisonError::into_inner);
        while !matches!(*job, StatsJob::Done(_)) {
            job = self
                .changed
                .wait(job)
                .unwrap_or_else(PoisonError::into_inner);
        }
        match std::mem::replace(&mut *job, StatsJob::Idle) {
            StatsJob::Done(stats) => stats,
            _ => None,
        }
    }

    fn serve(&self, config: &Config, logger: &Logger) {
        loop {
            let mut job = self.job.lock().unwrap_or_else(PoisonError::into_inner);
            while !matches!(*job, StatsJob::Requested) {
                job = self
                    .changed
                    .wait(job)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            drop(job);
            let stats = read_document(config, logger, Endpoint::Stats, model::decode_stats);
            *self.job.lock().unwrap_or_else(PoisonError::into_inner) = StatsJob::Done(stats);
            self.changed.notify_all();
        }
    }
}

/// What the loop, the forwarders and the shutdown handle share.
struct Shared {
    stop: AtomicBool,
    /// The servers in use, one per listener; an entry is replaced when its accept thread dies
    /// (see [`forward`]).
    servers: Mutex<Vec<Arc<tiny_http::Server>>>,
    /// Metrics requests received and not yet answered.
    in_flight: AtomicUsize,
    /// Metrics requests answered so far, by [`COUNTED_CODES`].
    answered: [AtomicU64; 3],
    /// What the forwarders and the shutdown handle hand to the loop, in order. (A Mutex and a
    /// Condvar, which tiny_http links anyway, rather than std's channel: 12 KB smaller.)
    events: Mutex<VecDeque<Event>>,
    ready: Condvar,
}

impl Shared {
    fn server(&self, index: usize) -> Option<Arc<tiny_http::Server>> {
        let servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        servers.get(index).map(Arc::clone)
    }

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
}

enum Event {
    Request(Request),
    Stop,
}

/// The documents one fetch got (`None` where fetching or decoding failed), and when.
struct Fetched {
    at: Instant,
    task: Option<TaskMetadata>,
    stats: Option<TaskStats>,
}

/// Listening failed.
#[derive(Debug)]
pub struct BindError {
    /// The address, or what stood for it (socket activation).
    pub address: String,
    pub cause: Box<dyn std::error::Error + Send + Sync>,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot listen on {}: {}", self.address, self.cause)
    }
}

impl std::error::Error for BindError {}

impl Server {
    /// Listens on every address of the configuration, or takes the sockets systemd passed.
    pub fn bind(config: Config) -> Result<Server, BindError> {
        let timeout = config.idle_timeout;
        let mut servers = Vec::new();
        if config.systemd_socket {
            let pid = std::env::var("LISTEN_PID").ok();
            let fds = std::env::var("LISTEN_FDS").ok();
            let fail = |cause| BindError {
                address: "systemd socket activation listeners".into(),
                cause,
            };
            let listeners = crate::sys::systemd_listeners(pid.as_deref(), fds.as_deref())
                .map_err(|e| fail(Box::new(e)))?;
            for listener in listeners {
                servers.push(listen(listener, timeout).map_err(fail)?);
            }
        } else {
            for address in &config.listen {
                let port = address.port;
                let listener = if address.host.is_empty() {
                    // All interfaces: IPv6 and IPv4 where the kernel has IPv6, else IPv4 alone.
                    std::net::TcpListener::bind(("::", port))
                        .or_else(|_| std::net::TcpListener::bind(("0.0.0.0", port)))
                } else {
                    std::net::TcpListener::bind((address.host.as_str(), port))
                };
                let http = listener.map_err(Box::from).and_then(|l| listen(l, timeout));
                servers.push(http.map_err(|cause| BindError {
                    address: address.to_string(),
                    cause,
                })?);
            }
        }
        Ok(Server::with_servers(servers, config))
    }

    fn with_servers(servers: Vec<tiny_http::Server>, config: Config) -> Server {
        Server {
            shared: Arc::new(Shared {
                stop: AtomicBool::new(false),
                servers: Mutex::new(servers.into_iter().map(Arc::new).collect()),
                in_flight: AtomicUsize::new(0),
                answered: Default::default(),
                events: Mutex::new(VecDeque::new()),
                ready: Condvar::new(),
            }),
            landing_page: landing_page(&config.telemetry_path),
            logger: config.logger,
            config,
            start_time_seconds: process::start_time_seconds(),
            body: String::new(),
            last: None,
            stats_fetcher: None,
        }
    }

    /// A handle that ends [`Server::run`] from another thread.
    pub fn shutdown_handle(&self) -> Shutdown {
        Shutdown {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Serves requests until [`Shutdown::shutdown`] is called; the request in hand is answered
    /// first.
    pub fn run(mut self) {
        let servers = self
            .shared
            .servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // The two lines the Go exporter starts with (exporter-toolkit's), per listener, so that
        // log-based start-up checks keep working.
        for server in &servers {
            let address = server.server_addr().to_string();
            log!(self.logger, Info, "Listening on", "address" = &address);
            log!(
                self.logger,
                Info,
                "TLS is disabled.",
                "http2" = false,
                "address" = &address
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
        for index in 0..servers.len() {
            let forwarder = Forwarder {
                index,
                shared: Arc::clone(&self.shared),
                logger: self.logger,
                telemetry_path: self.config.telemetry_path.clone(),
                max_requests: self.config.max_requests,
                idle_timeout: self.config.idle_timeout,
            };
            let name = format!("listener-{index}");
            if !spawn(&self.logger, name, 128, move || forwarder.run()) {
                return;
            }
        }
        drop(servers);
        let fetcher = Arc::new(StatsFetcher {
            job: Mutex::new(StatsJob::Idle),
            changed: Condvar::new(),
        });
        let (config, logger) = (self.config.clone(), self.logger);
        let serving = Arc::clone(&fetcher);
        let spawned = spawn(&self.logger, "stats-fetcher".into(), 256, move || {
            serving.serve(&config, &logger)
        });
        // Without the thread, scrapes fetch the two documents one after the other.
        self.stats_fetcher = spawned.then_some(fetcher);
        let shared = Arc::clone(&self.shared);
        let period = (self.config.idle_timeout / 2).max(Duration::from_millis(500));
        if !spawn(&self.logger, "keep-accepting".into(), 64, move || {
            keep_accepting(&shared, period)
        }) {
            return;
        }
        while let Event::Request(request) = self.shared.next() {
            self.handle(request);
        }
        log!(self.logger, Info, "stopped");
    }

    fn handle(&mut self, request: Request) {
        let allowed = get_or_head(&request);
        let result = match Route::of(&request, &self.config.telemetry_path) {
            Route::NotFound => respond(
                request,
                404,
                "text/plain; charset=utf-8",
                b"404 page not found\n",
                &[],
            ),
            _ if !allowed => respond(
                request,
                405,
                "text/plain; charset=utf-8",
                b"405 method not allowed\n",
                &[("Allow", "GET, HEAD")],
            ),
            Route::Health => respond(request, 200, "text/plain; charset=utf-8", b"ok", &[]),
            Route::Landing => respond(
                request,
                200,
                "text/html; charset=utf-8",
                self.landing_page.as_bytes(),
                &[],
            ),
            Route::Metrics => {
                self.scrape();
                let result = respond(
                    request,
                    200,
                    METRICS_CONTENT_TYPE,
                    self.body.as_bytes(),
                    &[],
                );
                // Counted after answering, as promhttp does: a scrape sees the ones before it.
                self.shared.answered[0].fetch_add(1, Ordering::SeqCst);
                self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                result
            }
        };
        if let Err(e) = result {
            log!(
                self.logger,
                Debug,
                "writing a response failed",
                "error" = &e
            );
        }
    }

    /// fetch -> decode -> collect -> write, into `self.body`.
    fn scrape(&mut self) {
        let started = Instant::now();
        // Coalescing: within --ecs.min-refresh-interval of the last fetch, reuse what it got
        // (failure included), so that HA Prometheus pairs and other sidecars sharing the task's
        // metadata rate limit do not multiply the requests.
        let interval = self.config.min_refresh_interval;
        let reuse = self
            .last
            .as_ref()
            .is_some_and(|l| l.at.elapsed() < interval);
        if reuse {
            log!(self.logger, Debug, "reusing the last metadata fetch");
        } else {
            // Both documents at once while /task answers; at the first scrape and after a
            // failed /task, one after the other, so that a failing or rate-limiting endpoint
            // gets one request per scrape, not two.
            let last_ok = self.last.as_ref().is_some_and(|l| l.task.is_some());
            let fetcher = self.stats_fetcher.as_deref().filter(|_| last_ok);
            let (task, stats) = read_metadata(&self.config, &self.logger, fetcher);
            self.last = Some(Fetched {
                at: Instant::now(),
                task,
                stats,
            });
        }
        let (task, stats) = match &self.last {
            Some(last) => (last.task.as_ref(), last.stats.as_ref()),
            None => (None, None),
        };
        let process;
        let requests: [(&str, u64); 3] = std::array::from_fn(|i| {
            let answered = self.shared.answered[i].load(Ordering::SeqCst);
            (COUNTED_CODES[i], answered)
        });
        let exporter = if self.config.exporter_metrics {
            process = process::read(self.start_time_seconds);
            Some(Exporter {
                process: &process,
                requests: &requests,
                in_flight: self.shared.in_flight.load(Ordering::SeqCst) as u64,
            })
        } else {
            None
        };
        let scrape = Scrape {
            task,
            stats,
            exporter,
            build: &version::BUILD,
            options: &self.config.collect,
        };
        let samples = render(&scrape, &mut self.body);
        if self.logger.enabled(Level::Debug) {
            let up = task.is_some() && stats.is_some();
            log!(
                self.logger,
                Debug,
                "scrape done",
                "up" = up,
                "samples" = samples,
                "bytes" = self.body.len(),
                "duration" = &logging::Debug(started.elapsed()),
            );
        }
    }
}

/// collect -> write: the exposition of one scrape's documents into `body`, returning the number
/// of samples. Public so that the fuzzer drives exactly what a scrape runs.
pub fn render(scrape: &Scrape, body: &mut String) -> usize {
    let mut samples = Vec::with_capacity(64);
    collect::collect(scrape, &mut samples);
    body.clear();
    exposition::write(body, FAMILIES, &samples);
    samples.len()
}

/// Serves on `listener`. TCP_NODELAY and the idle timeout are set on the listening socket,
/// which every accepted connection inherits (see [`crate::sys`]).
fn listen(
    listener: std::net::TcpListener,
    idle_timeout: Duration,
) -> Result<tiny_http::Server, Box<dyn std::error::Error + Send + Sync>> {
    crate::sys::set_nodelay(&listener)?;
    crate::sys::set_timeouts(&listener, idle_timeout)?;
    tiny_http::Server::from_listener(listener, None)
}

/// Starts a named thread with a small stack (KiB); false, with an error logged, if it could not.
fn spawn(
    logger: &Logger,
    name: String,
    stack_kib: usize,
    f: impl FnOnce() + Send + 'static,
) -> bool {
    let spawned = std::thread::Builder::new()
        .name(name)
        .stack_size(stack_kib * 1024)
        .spawn(f);
    if let Err(e) = &spawned {
        log!(logger, Error, "cannot start a thread", "error" = e);
    }
    spawned.is_ok()
}

/// Keeps every listener's accept from timing out. SO_RCVTIMEO, set on the listening socket so
/// that accepted connections inherit it, also bounds how long `accept` waits, and tiny_http's
/// accept thread ends on that error. A connection to ourselves every half timeout starts a new
/// wait; tiny_http reads its end of file and closes it.
fn keep_accepting(shared: &Shared, period: Duration) {
    while !shared.stopping() {
        std::thread::sleep(period);
        let servers = shared
            .servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for server in servers {
            if let Some(mut address) = server.server_addr().to_ip() {
                if address.ip().is_unspecified() {
                    let loopback: std::net::IpAddr = match address {
                        SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    };
                    address.set_ip(loopback);
                }
                let _ = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1));
            }
        }
    }
}

/// Hands one server's requests to the loop.
struct Forwarder {
    index: usize,
    shared: Arc<Shared>,
    logger: Logger,
    telemetry_path: String,
    max_requests: usize,
    idle_timeout: Duration,
}

impl Forwarder {
    fn run(self) {
        let Some(mut http) = self.shared.server(self.index) else {
            return;
        };
        loop {
            match http.recv() {
                Ok(request) => {
                    if self.is_metrics(&request) && !self.admit() {
                        self.shared.answered[2].fetch_add(1, Ordering::SeqCst);
                        let body = b"503 too many metrics requests in flight\n";
                        let _ = respond(request, 503, "text/plain; charset=utf-8", body, &[]);
                        continue;
                    }
                    self.shared.send(Event::Request(request));
                }
                Err(_) if self.shared.stopping() => return,
                // tiny_http reports an accept error this way, and its accept thread has ended
                // with it (say, out of file descriptors): nothing would be served again.
                Err(e) => match http.server_addr().to_ip() {
                    Some(address) => match self.rebind(address, &e) {
                        Some(server) => http = server,
                        None => return,
                    },
                    None => return,
                },
            }
        }
    }

    /// A metrics request the loop will answer (GET or HEAD on the telemetry path).
    fn is_metrics(&self, request: &Request) -> bool {
        let route = Route::of(request, &self.telemetry_path);
        matches!(route, Route::Metrics) && get_or_head(request)
    }

    /// Counts one more metrics request in flight, unless that would pass the limit.
    fn admit(&self) -> bool {
        let max = self.max_requests;
        let in_flight = &self.shared.in_flight;
        in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (max == 0 || n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Listens again on `address` once the old listener is gone, retrying every 100 ms until it
    /// works (descriptors free up as clients close) or the exporter is stopped.
    fn rebind(
        &self,
        address: SocketAddr,
        cause: &std::io::Error,
    ) -> Option<Arc<tiny_http::Server>> {
        log!(
            self.logger,
            Warn,
            "accepting connections failed; listening again",
            "address" = &address,
            "error" = cause
        );
        let mut attempts = 0u32;
        while !self.shared.stopping() {
            let bound = std::net::TcpListener::bind(address)
                .map_err(Box::from)
                .and_then(|l| listen(l, self.idle_timeout));
            match bound {
                Ok(server) => {
                    let server = Arc::new(server);
                    let mut servers = self
                        .shared
                        .servers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if let Some(slot) = servers.get_mut(self.index) {
                        *slot = Arc::clone(&server);
                    }
                    drop(servers);
                    log!(self.logger, Info, "listening again", "address" = &address);
                    return Some(server);
                }
                Err(e) => {
                    attempts += 1;
                    if attempts % 100 == 1 {
                        log!(
                            self.logger,
                            Warn,
                            "listening again failed; retrying",
                            "error" = &e
                        );
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        None
    }
}

/// Ends the server loop: set the flag, wake the forwarders, and tell the loop after the
/// requests already handed to it.
pub struct Shutdown {
    shared: Arc<Shared>,
}

impl Shutdown {
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let servers = self
            .shared
            .servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for server in servers.iter() {
            server.unblock();
        }
        drop(servers);
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
    /// The route of a request's path; the query string does not count.
    fn of(request: &Request, telemetry_path: &str) -> Route {
        match request.url().split('?').next().unwrap_or("") {
            path if path == telemetry_path => Route::Metrics,
            "/health" => Route::Health,
            "/" => Route::Landing,
            _ => Route::NotFound,
        }
    }
}

/// The methods every route answers; others get 405.
fn get_or_head(request: &Request) -> bool {
    matches!(request.method(), Method::Get | Method::Head)
}

/// Fetches and decodes `/task` and `/task/stats`. With a `fetcher`, both at once: two requests.
/// Without, `/task` first, and `/task/stats` only if `/task` arrived: without `/task` there is
/// nothing to match stats to (then stats fetched at the same time are dropped too).
fn read_metadata(
    config: &Config,
    logger: &Logger,
    fetcher: Option<&StatsFetcher>,
) -> (Option<TaskMetadata>, Option<TaskStats>) {
    if let Some(fetcher) = fetcher {
        fetcher.request();
    }
    let task = read_document(config, logger, Endpoint::Task, model::decode_task);
    let stats = match fetcher {
        Some(fetcher) => fetcher.result(),
        None if task.is_some() => {
            read_document(config, logger, Endpoint::Stats, model::decode_stats)
        }
        None => None,
    };
    let stats = if task.is_some() { stats } else { None };
    (task, stats)
}

fn read_document<T>(
    config: &Config,
    logger: &Logger,
    endpoint: Endpoint,
    decode: fn(&str) -> Result<T, DecodeError>,
) -> Option<T> {
    let started = Instant::now();
    let result = tmds::fetch(&config.metadata, endpoint, config.timeout)
        .map_err(ReadError::Fetch)
        .and_then(|body| decode(&body).map_err(ReadError::Decode));
    match result {
        Ok(document) => {
            log!(
                logger,
                Debug,
                "metadata read",
                "endpoint" = &endpoint,
                "duration" = &logging::Debug(started.elapsed()),
            );
            Some(document)
        }
        Err(e) => {
            log!(
                logger,
                Warn,
                "metadata request failed",
                "endpoint" = &endpoint,
                "error" = &e,
                "duration" = &logging::Debug(started.elapsed()),
            );
            None
        }
    }
}

#[derive(Debug)]
enum ReadError {
    Fetch(FetchError),
    Decode(DecodeError),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Fetch(e) => e.fmt(f),
            ReadError::Decode(e) => e.fmt(f),
        }
    }
}

fn respond(
    request: Request,
    code: u16,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> std::io::Result<()> {
    let headers = std::iter::once(("Content-Type", content_type))
        .chain(extra.iter().copied())
        .filter_map(|(name, value)| Header::from_bytes(name.as_bytes(), value.as_bytes()).ok())
        .collect();
    let response = Response::new(StatusCode(code), headers, body, Some(body.len()), None);
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
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    fn get_health(address: SocketAddr) -> Option<String> {
        let mut stream = std::net::TcpStream::connect(address).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(b"GET /health HTTP/1.0\r\n\r\n").ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        Some(answer)
    }

    /// tiny_http's accept thread ends on an accept error and only reports it; the loop must
    /// listen again. Shutting the listening socket down makes accept fail for real.
    #[test]
    fn an_accept_error_makes_it_listen_again() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let address = listener.local_addr().expect("address");
        let handle = listener.try_clone().expect("a second handle on the socket");
        let http = tiny_http::Server::from_listener(listener, None).expect("serves");
        let args = [
            "--ecs.metadata-uri=http://127.0.0.1:9/v4",
            "--log.level=error",
        ]
        .map(std::ffi::OsString::from);
        let config = match crate::cli::parse(args, None) {
            Ok(crate::cli::Command::Run(config)) => config,
            other => panic!("{other:?}"),
        };
        let server = Server::with_servers(vec![http], config);
        let shutdown = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run());
        assert!(get_health(address).is_some_and(|a| a.contains(" 200 ")));

        // SAFETY: shutdown(2) on a socket we hold a handle to.
        let rc = unsafe { libc::shutdown(handle.as_raw_fd(), libc::SHUT_RDWR) };
        assert_eq!(rc, 0);
        drop(handle);
        let mut answered = false;
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(50));
            if get_health(address).is_some_and(|a| a.contains(" 200 ")) {
                answered = true;
                break;
            }
        }
        shutdown.shutdown();
        thread.join().expect("the loop ends");
        assert!(
            answered,
            "/health is answered again after the accept thread died"
        );
    }
}
