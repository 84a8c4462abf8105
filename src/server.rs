//! The HTTP side: the listening sockets and their accept path (`front`), one tiny_http server
//! behind it, scrapes answered one at a time by one loop on the main thread, everything else at
//! once by the listener thread.
//!
//! tiny_http reads requests on threads of its own; the listener thread takes its complete
//! requests. `/health`, `/`, 404 and 405 are answered right there, so that they never wait behind
//! a scrape (a slow agent must not make the container health check fail). Metrics requests go to
//! the loop, in order, through a queue (`Shared::send`); beyond `--web.max-requests` waiting or in
//! progress they are answered 503 at once, so that a slow endpoint cannot pile up scrapes behind
//! it. After SIGTERM, the scrape in hand is answered and every queued one gets 503 without
//! fetching anything. Nothing a client sends can end the loop.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use tiny_http::{Header, Method, Request, Response, StatusCode};

use crate::cli::Config;
use crate::collect::Answered;
use crate::front::{self, Door};
use crate::log::Logger;
use crate::scrape::{Scraper, Serving};
use crate::{log, version};

/// As client_golang 1.21's promhttp sends it (the escaping parameter says that names outside
/// the legacy character set would be escaped with underscores; ours never are).
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores";
const TEXT: &str = "text/plain; charset=utf-8";

pub struct Server {
    shared: Arc<Shared>,
    /// The sockets clients connect to, in the order given.
    listeners: Vec<TcpListener>,
    config: Config,
    logger: Logger,
}

/// What the loop, the listener thread, the accept path and the shutdown handle share.
struct Shared {
    stop: AtomicBool,
    /// The tiny_http server behind the accept path; replaced when its accept thread dies (see
    /// [`Listener::listen_again`]).
    server: Mutex<Http>,
    door: Arc<Door>,
    counters: Counters,
    /// What the listeners and the shutdown handle hand to the loop, in order. (A Mutex and a
    /// Condvar, which tiny_http links anyway, rather than std's channel, which links more code:
    /// docs/footprint.md.)
    events: Mutex<VecDeque<Event>>,
    ready: Condvar,
    /// `/`, built once.
    landing_page: String,
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
    in_flight: front::Capped,
}

impl Counters {
    fn serving(&self) -> Serving {
        Serving {
            answered: Answered {
                ok: self.ok.load(Ordering::SeqCst),
                unavailable: self.unavailable.load(Ordering::SeqCst),
            },
            in_flight: self.in_flight.get() as u64,
        }
    }
}

/// A tiny_http server that lives as long as the process. tiny_http 0.12's `Drop` wakes its accept
/// thread by connecting to the listener's path, and panics for an abstract socket, which has
/// none; so a server is never dropped (one that had to be replaced stays behind, idle).
type Http = &'static tiny_http::Server;

impl Shared {
    fn server(&self) -> Http {
        *self.server.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// A metrics request that will not be scraped: 503 at once, counted.
    fn unavailable(&self, request: Request, why: &[u8]) {
        self.counters.unavailable.fetch_add(1, Ordering::SeqCst);
        let _ = respond(request, 503, TEXT, why, &[]);
    }
}

enum Event {
    /// A metrics request, admitted (counted in flight).
    Scrape(Request),
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
                listeners.push(listener.map_err(|cause| StartError {
                    what: format!("cannot listen on {address}"),
                    cause: Box::new(cause),
                })?);
            }
        }
        let (server, internal) = serve_internally().map_err(|cause| StartError {
            what: "cannot listen on an internal socket".into(),
            cause,
        })?;
        Server::with_listeners(listeners, server, internal, config).map_err(|cause| StartError {
            what: "cannot start serving".into(),
            cause: Box::new(cause),
        })
    }

    fn with_listeners(
        listeners: Vec<TcpListener>,
        server: tiny_http::Server,
        internal: std::os::unix::net::SocketAddr,
        config: Config,
    ) -> std::io::Result<Server> {
        let door = Door::new(
            internal,
            config.max_connections,
            config.idle_timeout,
            config.logger,
        )?;
        Ok(Server {
            shared: Arc::new(Shared {
                stop: AtomicBool::new(false),
                server: Mutex::new(Box::leak(Box::new(server))),
                door: Arc::new(door),
                counters: Counters::default(),
                events: Mutex::new(VecDeque::new()),
                ready: Condvar::new(),
                landing_page: landing_page(&config.telemetry_path),
            }),
            listeners,
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

    /// Serves requests until [`Shutdown::shutdown`] is called: the scrape in hand is answered
    /// first. Fails, before anything is served, if a thread cannot be started.
    pub fn run(self) -> Result<(), StartError> {
        // The two lines the Go exporter starts with (exporter-toolkit's), per listener, so that
        // log-based start-up checks keep working.
        for listener in &self.listeners {
            let address = listener
                .local_addr()
                .map_or_else(|e| e.to_string(), |a| a.to_string());
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
        let mut scraper = Scraper::start(self.config.clone()).map_err(thread_failed)?;
        let listener = Listener {
            shared: Arc::clone(&self.shared),
            logger: self.logger,
            telemetry_path: self.config.telemetry_path.clone(),
            max_requests: self.config.max_requests,
        };
        spawn("listener".into(), 128, move || listener.run()).map_err(thread_failed)?;
        for (index, socket) in self.listeners.into_iter().enumerate() {
            let door = Arc::clone(&self.shared.door);
            spawn(format!("accept-{index}"), 64, move || {
                front::accept(socket, door)
            })
            .map_err(thread_failed)?;
        }

        let counters = &self.shared.counters;
        let compressors = crate::gzip::Pool::default();
        while let Event::Scrape(request) = self.shared.next() {
            if self.shared.stopping() {
                self.shared.unavailable(request, b"503 shutting down\n");
            } else {
                // As promhttp: gzip when the request allows it (gzip.rs).
                let encoding = crate::gzip::negotiate(
                    request
                        .headers()
                        .iter()
                        .filter(|h| h.field.equiv("Accept-Encoding"))
                        .map(|h| h.value.as_str()),
                );
                let answer = scraper.scrape(counters.serving());
                let vary = ("Vary", "Accept-Encoding");
                let result = match encoding {
                    crate::gzip::Encoding::Identity => respond_with(
                        request,
                        200,
                        METRICS_CONTENT_TYPE,
                        (answer.reader(), Some(answer.len())),
                        &[vary],
                    ),
                    // Compressed as it is written: no length ahead (HTTP/1.1 gets it chunked).
                    crate::gzip::Encoding::Gzip => respond_with(
                        request,
                        200,
                        METRICS_CONTENT_TYPE,
                        (
                            crate::gzip::Gzip::new(
                                scraper.take_answer().into_reader(),
                                &compressors,
                            ),
                            None,
                        ),
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
                if let Err(e) = result {
                    log!(
                        self.logger,
                        Debug,
                        "writing a response failed",
                        "error" = &e
                    );
                }
            }
            counters.in_flight.done();
        }
        // Every answer is written; let the accept path forward the last ones.
        self.shared.door.drain(Duration::from_secs(1));
        log!(self.logger, Info, "stopped");
        Ok(())
    }
}

/// The tiny_http server behind the accept path, on an internal socket, and that socket's address.
fn serve_internally() -> Result<
    (tiny_http::Server, std::os::unix::net::SocketAddr),
    Box<dyn std::error::Error + Send + Sync>,
> {
    let listener = front::internal_listener()?;
    let address = listener.local_addr()?;
    Ok((tiny_http::Server::from_listener(listener, None)?, address))
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
        let mut http = self.shared.server();
        loop {
            match http.recv() {
                Ok(request) => self.take(request),
                Err(_) if self.shared.stopping() => return,
                // tiny_http reports an accept error this way, and its accept thread has ended
                // with it (say, out of file descriptors): nothing would be served again.
                Err(e) => match self.listen_again(&e) {
                    Some(server) => http = server,
                    None => return,
                },
            }
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
                    shared.unavailable(request, b"503 shutting down\n");
                } else if shared.counters.in_flight.admit(self.max_requests) {
                    shared.send(Event::Scrape(request));
                } else {
                    shared.unavailable(request, b"503 too many metrics requests in flight\n");
                }
                Ok(())
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

    /// Starts a new internal server once the old one's accept thread is gone, retrying every
    /// 100 ms until it works (descriptors free up as clients close) or the exporter is stopped;
    /// new connections go to it.
    fn listen_again(&self, cause: &std::io::Error) -> Option<Http> {
        log!(
            self.logger,
            Warn,
            "accepting connections failed; listening again",
            "error" = cause
        );
        let mut attempts = 0u32;
        while !self.shared.stopping() {
            match serve_internally() {
                Ok((server, address)) => {
                    let server: Http = Box::leak(Box::new(server));
                    *self
                        .shared
                        .server
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = server;
                    self.shared.door.set_internal(address);
                    log!(self.logger, Info, "listening again");
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

/// Ends the server loop: set the flag, wake the listener thread, and tell the loop after the
/// scrapes already handed to it (which it answers 503 once the flag is set).
pub struct Shutdown {
    shared: Arc<Shared>,
}

impl Shutdown {
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.door.stop();
        self.shared.server().unblock();
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

fn respond(
    request: Request,
    code: u16,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> std::io::Result<()> {
    respond_with(request, code, content_type, (body, Some(body.len())), extra)
}

/// [`respond`] with a body read from `body.0`, of `body.1` bytes if known ahead.
fn respond_with(
    request: Request,
    code: u16,
    content_type: &str,
    body: (impl std::io::Read, Option<usize>),
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
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    fn get_health(address: std::net::SocketAddr) -> Option<String> {
        let mut stream = std::net::TcpStream::connect(address).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(b"GET /health HTTP/1.0\r\n\r\n").ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        Some(answer)
    }

    /// tiny_http's accept thread ends on an accept error and only reports it; the listener
    /// thread must start a new internal server, and the accept path send connections to it.
    /// Shutting the internal listening socket down makes tiny_http's accept fail for real.
    #[test]
    fn an_accept_error_makes_it_listen_again() {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("binds");
        let address = tcp.local_addr().expect("address");
        let internal = front::internal_listener().expect("an internal socket");
        let internal_address = internal.local_addr().expect("its address");
        let handle = internal.try_clone().expect("a second handle on the socket");
        let http = tiny_http::Server::from_listener(internal, None).expect("serves");
        let args = [
            "--ecs.metadata-uri=http://127.0.0.1:9/v4",
            "--log.level=error",
        ]
        .map(std::ffi::OsString::from);
        let config = match crate::cli::parse(args, None) {
            Ok(crate::cli::Command::Run(config)) => config,
            other => panic!("{other:?}"),
        };
        let server =
            Server::with_listeners(vec![tcp], http, internal_address, config).expect("serves");
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
        let ended = thread.join().expect("the loop ends");
        assert!(ended.is_ok());
        assert!(
            answered,
            "/health is answered again after the accept thread died"
        );
    }
}
