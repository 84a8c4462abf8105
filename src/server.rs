//! The HTTP side: one tiny_http server answered by one loop on the main thread.
//!
//! The failure policy, stated once: a scrape always answers 200 with whatever the metadata that
//! did arrive supports, `ecs_up` says whether all of it arrived, and each failed metadata request
//! is logged as a warning naming the endpoint and the failure. Nothing a client or the endpoint
//! sends can end the loop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tiny_http::{Header, Method, Request, Response, StatusCode};

use crate::cli::{Config, ListenAddress};
use crate::collect::{self, Exporter, FAMILIES, Scrape};
use crate::log::{Level, Logger};
use crate::model::{self, DecodeError, TaskMetadata, TaskStats};
use crate::tmds::{self, Endpoint, FetchError};
use crate::{exposition, process, version};

const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The status codes client_golang's promhttp counts from the start, so that dashboards which
/// select `code="500"` find a series (always 0 here: a scrape never fails as a whole).
const COUNTED_CODES: [&str; 3] = ["200", "500", "503"];

pub struct Server {
    /// The server in use; replaced if tiny_http's accept thread dies (see [`Server::rebind`]).
    http: Arc<Mutex<Arc<tiny_http::Server>>>,
    stop: Arc<AtomicBool>,
    config: Config,
    logger: Logger,
    landing_page: String,
    start_time_seconds: Option<f64>,
    /// Metrics requests answered so far, by [`COUNTED_CODES`].
    requests: [u64; 3],
    /// The exposition text, reused from scrape to scrape.
    body: String,
    /// The last metadata fetch, kept for `--ecs.min-refresh-interval`.
    last: Option<Fetched>,
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
    pub address: ListenAddress,
    pub cause: Box<dyn std::error::Error + Send + Sync>,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot listen on {}: {}", self.address, self.cause)
    }
}

impl std::error::Error for BindError {}

impl Server {
    pub fn bind(config: Config) -> Result<Server, BindError> {
        let port = config.listen.port;
        let listener = if config.listen.host.is_empty() {
            // All interfaces: IPv6 and IPv4 where the kernel has IPv6, else IPv4 alone.
            std::net::TcpListener::bind(("::", port))
                .or_else(|_| std::net::TcpListener::bind(("0.0.0.0", port)))
        } else {
            std::net::TcpListener::bind((config.listen.host.as_str(), port))
        };
        let http = listener.map_err(Box::from).and_then(listen);
        let http = http.map_err(|cause| BindError {
            address: config.listen.clone(),
            cause,
        })?;
        Ok(Server::with_http(http, config))
    }

    fn with_http(http: tiny_http::Server, config: Config) -> Server {
        Server {
            http: Arc::new(Mutex::new(Arc::new(http))),
            stop: Arc::new(AtomicBool::new(false)),
            landing_page: landing_page(&config.telemetry_path),
            logger: config.logger,
            config,
            start_time_seconds: process::start_time_seconds(),
            requests: [0; 3],
            body: String::new(),
            last: None,
        }
    }

    /// A handle that ends [`Server::run`] from another thread.
    pub fn shutdown_handle(&self) -> Shutdown {
        Shutdown {
            http: Arc::clone(&self.http),
            stop: Arc::clone(&self.stop),
        }
    }

    /// Serves requests until [`Shutdown::shutdown`] is called; the request in hand is answered
    /// first.
    pub fn run(mut self) {
        let mut http = self.current();
        let address = http.server_addr().to_string();
        let b = &version::BUILD;
        self.logger.log(
            Level::Info,
            "starting ecs_exporter",
            &[
                ("version", &b.version),
                ("revision", &b.revision),
                ("address", &address),
                ("telemetry_path", &self.config.telemetry_path),
                ("metadata", &self.config.metadata),
            ],
        );
        while !self.stop.load(Ordering::SeqCst) {
            match http.recv() {
                Ok(request) => self.handle(request),
                Err(_) if self.stop.load(Ordering::SeqCst) => break,
                // tiny_http reports an accept error this way, and its accept thread has ended
                // with it (say, out of file descriptors): nothing would be served again.
                Err(e) => match http.server_addr().to_ip() {
                    Some(address) => http = self.rebind(address, &e),
                    None => break,
                },
            }
        }
        self.logger.log(Level::Info, "stopped", &[]);
    }

    fn current(&self) -> Arc<tiny_http::Server> {
        Arc::clone(&self.http.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Listens again on `address` once the old listener is gone, retrying every 100 ms until it
    /// works (descriptors free up as clients close) or the exporter is stopped.
    fn rebind(&mut self, address: SocketAddr, cause: &std::io::Error) -> Arc<tiny_http::Server> {
        self.logger.log(
            Level::Warn,
            "accepting connections failed; listening again",
            &[("address", &address), ("error", cause)],
        );
        let mut attempts = 0u32;
        while !self.stop.load(Ordering::SeqCst) {
            match std::net::TcpListener::bind(address)
                .map_err(Box::from)
                .and_then(listen)
            {
                Ok(server) => {
                    let server = Arc::new(server);
                    *self.http.lock().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&server);
                    self.logger
                        .log(Level::Info, "listening again", &[("address", &address)]);
                    return server;
                }
                Err(e) => {
                    attempts += 1;
                    if attempts % 100 == 1 {
                        self.logger.log(
                            Level::Warn,
                            "listening again failed; retrying",
                            &[("error", &e)],
                        );
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        self.current()
    }

    fn handle(&mut self, request: Request) {
        let path = request.url().split('?').next().unwrap_or("");
        let route = if path == self.config.telemetry_path {
            Route::Metrics
        } else if path == "/health" {
            Route::Health
        } else if path == "/" {
            Route::Landing
        } else {
            Route::NotFound
        };
        let allowed = matches!(request.method(), Method::Get | Method::Head);
        let result = match route {
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
                self.requests[0] += 1;
                result
            }
        };
        if let Err(e) = result {
            self.logger
                .log(Level::Debug, "writing a response failed", &[("error", &e)]);
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
            self.logger
                .log(Level::Debug, "reusing the last metadata fetch", &[]);
        } else {
            let (task, stats) = read_metadata(&self.config, &self.logger);
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
        let requests: [(&str, u64); 3] =
            std::array::from_fn(|i| (COUNTED_CODES[i], self.requests[i]));
        let exporter = if self.config.exporter_metrics {
            process = process::read(self.start_time_seconds);
            Some(Exporter {
                process: &process,
                requests: &requests,
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
        let mut samples = Vec::with_capacity(64);
        collect::collect(&scrape, &mut samples);
        self.body.clear();
        exposition::write(&mut self.body, FAMILIES, &samples);
        if self.logger.enabled(Level::Debug) {
            let up = task.is_some() && stats.is_some();
            self.logger.log(
                Level::Debug,
                "scrape done",
                &[
                    ("up", &up),
                    ("samples", &samples.len()),
                    ("bytes", &self.body.len()),
                    ("duration", &format_args!("{:?}", started.elapsed())),
                ],
            );
        }
    }
}

/// Serves on `listener`, with TCP_NODELAY for every connection (see [`crate::sys::set_nodelay`]).
fn listen(
    listener: std::net::TcpListener,
) -> Result<tiny_http::Server, Box<dyn std::error::Error + Send + Sync>> {
    crate::sys::set_nodelay(&listener)?;
    tiny_http::Server::from_listener(listener, None)
}

/// Ends the server loop: set the flag, then wake the loop if it waits for a request.
pub struct Shutdown {
    http: Arc<Mutex<Arc<tiny_http::Server>>>,
    stop: Arc<AtomicBool>,
}

impl Shutdown {
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.http
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unblock();
    }
}

#[derive(Clone, Copy)]
enum Route {
    Metrics,
    Health,
    Landing,
    NotFound,
}

/// Fetches and decodes `/task` and then `/task/stats`: two requests at most. Without `/task`
/// there is nothing to match stats to, so `/task/stats` is not asked for.
fn read_metadata(config: &Config, logger: &Logger) -> (Option<TaskMetadata>, Option<TaskStats>) {
    let task = read_document(config, logger, Endpoint::Task, model::decode_task);
    let stats = match task {
        Some(_) => read_document(config, logger, Endpoint::Stats, model::decode_stats),
        None => None,
    };
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
            logger.log(
                Level::Debug,
                "metadata read",
                &[
                    ("endpoint", &endpoint),
                    ("duration", &format_args!("{:?}", started.elapsed())),
                ],
            );
            Some(document)
        }
        Err(e) => {
            let elapsed: Duration = started.elapsed();
            logger.log(
                Level::Warn,
                "metadata request failed",
                &[
                    ("endpoint", &endpoint),
                    ("error", &e),
                    ("duration", &format_args!("{elapsed:?}")),
                ],
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
        let server = Server::with_http(http, config);
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
