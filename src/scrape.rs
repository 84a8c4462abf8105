//! One scrape: fetch -> decode -> collect -> write. The server hands a metrics request here and
//! sends back the body this returns; everything about the metadata endpoint lives below this
//! line, everything about HTTP clients above it (`server`).
//!
//! The failure policy, stated once: a scrape always produces the exposition of whatever metadata
//! did arrive, `ecs_up` says whether all of it arrived, and each failed metadata request is
//! logged as a warning naming the endpoint and the failure.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use crate::cli::Config;
use crate::collect::{self, Answered, Exporter, FAMILIES, Scrape};
use crate::exposition::{self, TooLarge};
use crate::log::{self as logging, Level};
use crate::model::{self, DecodeError, Decoded, TaskMetadata, TaskStats};
use crate::tmds::{self, Endpoint, FetchError};
use crate::{log, process, version};

/// The largest answer written. A real task's is tens of KiB; documents that would make it larger
/// (names thousands of bytes long, repeated in every family) are left out of the scrape, with
/// `ecs_up 0` and a warning, rather than held in memory.
pub const MAX_ANSWER: usize = 8 << 20;

/// What the server tells a scrape about itself, for the exporter's own metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct Serving {
    pub answered: Answered,
    /// Metrics requests received and not yet answered, this one included.
    pub in_flight: u64,
}

/// The scraping half of the exporter: owned by the server's loop, one scrape at a time.
pub struct Scraper {
    config: Config,
    start_time_seconds: Option<f64>,
    /// The exposition text, reused from scrape to scrape.
    body: String,
    /// The last metadata fetch, kept for `--ecs.min-refresh-interval`.
    last: Option<Fetched>,
    /// Fetches `/task/stats` while the loop fetches `/task`.
    stats_fetcher: Arc<StatsFetcher>,
}

/// The documents one fetch got (`None` where fetching or decoding failed), and when.
struct Fetched {
    at: Instant,
    task: Option<TaskMetadata>,
    stats: Option<TaskStats>,
}

impl Scraper {
    /// Starts the thread that fetches `/task/stats` beside the loop.
    pub fn start(config: Config) -> std::io::Result<Scraper> {
        let stats_fetcher = Arc::new(StatsFetcher {
            job: Mutex::new(StatsJob::Idle),
            changed: Condvar::new(),
        });
        let (serving, fetcher_config) = (Arc::clone(&stats_fetcher), config.clone());
        std::thread::Builder::new()
            .name("stats-fetcher".into())
            .stack_size(256 * 1024)
            .spawn(move || serving.serve(&fetcher_config))?;
        Ok(Scraper {
            config,
            start_time_seconds: process::start_time_seconds(),
            body: String::new(),
            last: None,
            stats_fetcher,
        })
    }

    /// fetch -> decode -> collect -> write; the exposition text.
    pub fn scrape(&mut self, serving: Serving) -> &str {
        let started = Instant::now();
        let logger = self.config.logger;
        // Coalescing: within --ecs.min-refresh-interval of the last fetch, reuse what it got
        // (failure included), so that HA Prometheus pairs and other sidecars sharing the task's
        // metadata rate limit do not multiply the requests.
        let interval = self.config.min_refresh_interval;
        let reuse = self
            .last
            .as_ref()
            .is_some_and(|l| l.at.elapsed() < interval);
        if reuse {
            log!(logger, Debug, "reusing the last metadata fetch");
        } else {
            // Both documents at once while /task answers; at the first scrape and after a
            // failed /task, one after the other, so that a failing or rate-limiting endpoint
            // gets one request per scrape, not two.
            let last_ok = self.last.take().is_some_and(|l| l.task.is_some());
            let fetcher = last_ok.then_some(&*self.stats_fetcher);
            let (task, stats) = read_metadata(&self.config, fetcher);
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
        let exporter = if self.config.exporter_metrics {
            process = process::read(self.start_time_seconds);
            Some(Exporter {
                process: &process,
                answered: serving.answered,
                in_flight: serving.in_flight,
            })
        } else {
            None
        };
        let mut scrape = Scrape {
            task,
            stats,
            exporter,
            build: &version::BUILD,
            options: &self.config.collect,
        };
        let samples = match render(&scrape, &mut self.body) {
            Ok(samples) => samples,
            Err(e) => {
                log!(
                    logger,
                    Warn,
                    "metadata left out of the scrape",
                    "error" = &e
                );
                scrape.task = None;
                scrape.stats = None;
                render(&scrape, &mut self.body).unwrap_or(0)
            }
        };
        if logger.enabled(Level::Debug) {
            let up = scrape.task.is_some() && scrape.stats.is_some();
            log!(
                logger,
                Debug,
                "scrape done",
                "up" = up,
                "samples" = samples,
                "bytes" = self.body.len(),
                "duration" = &logging::Debug(started.elapsed()),
            );
        }
        &self.body
    }
}

/// collect -> write: the exposition of one scrape's documents into `body`, returning the number
/// of samples written, or [`TooLarge`] past [`MAX_ANSWER`] bytes. Public so that the fuzzer and
/// the benchmarks run exactly what a scrape runs.
pub fn render(scrape: &Scrape, body: &mut String) -> Result<usize, TooLarge> {
    let mut samples = Vec::with_capacity(64);
    collect::collect(scrape, &mut samples);
    body.clear();
    exposition::write(body, FAMILIES, &samples, MAX_ANSWER)
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

    fn serve(&self, config: &Config) {
        loop {
            let mut job = self.job.lock().unwrap_or_else(PoisonError::into_inner);
            while !matches!(*job, StatsJob::Requested) {
                job = self
                    .changed
                    .wait(job)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            drop(job);
            let stats = read_document(config, Endpoint::Stats, model::decode_stats);
            *self.job.lock().unwrap_or_else(PoisonError::into_inner) = StatsJob::Done(stats);
            self.changed.notify_all();
        }
    }
}

/// Fetches and decodes `/task` and `/task/stats`. With a `fetcher`, both at once: two requests.
/// Without, `/task` first, and `/task/stats` only if `/task` arrived: without `/task` there is
/// nothing to match stats to (then stats fetched at the same time are dropped too).
fn read_metadata(
    config: &Config,
    fetcher: Option<&StatsFetcher>,
) -> (Option<TaskMetadata>, Option<TaskStats>) {
    if let Some(fetcher) = fetcher {
        fetcher.request();
    }
    let labels = &config.collect.labels;
    let task = read_document(config, Endpoint::Task, |body| decode_task(body, labels));
    let stats = match fetcher {
        Some(fetcher) => fetcher.result(),
        None if task.is_some() => read_document(config, Endpoint::Stats, model::decode_stats),
        None => None,
    };
    let stats = if task.is_some() { stats } else { None };
    (task, stats)
}

/// decode: `/task`, with the container labels `--ecs.container-labels` selects (the others are
/// dropped here, so that collect reads only what it writes). Public so that the fuzzer and the
/// benchmarks decode exactly as a scrape does.
pub fn decode_task(body: String, labels: &[String]) -> Result<Decoded<TaskMetadata>, DecodeError> {
    let mut decoded = model::decode_task(body)?;
    collect::select_labels(&mut decoded.document, labels);
    Ok(decoded)
}

fn read_document<T>(
    config: &Config,
    endpoint: Endpoint,
    decode: impl FnOnce(String) -> Result<Decoded<T>, DecodeError>,
) -> Option<T> {
    let logger = config.logger;
    let started = Instant::now();
    let result = tmds::fetch(&config.metadata, endpoint, config.timeout)
        .map_err(ReadError::Fetch)
        .and_then(|body| decode(body).map_err(ReadError::Decode));
    match result {
        Ok(Decoded { document, left_out }) => {
            if left_out > 0 {
                log!(
                    logger,
                    Warn,
                    "metadata left out: more containers, interfaces or labels than the exporter reads",
                    "endpoint" = &endpoint,
                    "left_out" = left_out,
                    "containers_per_task" = model::MAX_CONTAINERS,
                    "interfaces_per_container" = model::MAX_INTERFACES,
                    "labels_per_container" = model::MAX_LABELS_PER_CONTAINER,
                );
            }
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

/// Why a document could not be read: fetching or decoding it failed.
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
