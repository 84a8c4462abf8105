//! One scrape: fetch -> decode -> collect -> write. The server hands a metrics request here and
//! sends back the body this returns; everything about the metadata endpoint lives below this
//! line, everything about HTTP clients above it (`server`).
//!
//! The failure policy, stated once: a scrape always produces the exposition of whatever metadata
//! did arrive, `ecs_up` says whether all of it arrived, and each failed metadata request is
//! logged as a warning naming the endpoint and the failure.
//!
//! Both scopes take the same path: task scope reads `/task` and `/task/stats` as lists of one,
//! instance scope reads `/tasks` and `/tasks/stats` (`tmds::Scope`).

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::collect::{self, Answered, Exporter, FAMILIES, Pairing, Scrape, TASK_LABEL};
use crate::config::Config;
use crate::exposition::{Exposition, TooLarge};
use crate::log::{self as logging, Level};
use crate::model::{self, DecodeError, Decoded, TaskMetadata, TaskStats};
use crate::tmds::{self, Endpoint, FetchError, Scope};
use crate::{log, process, version};

/// The largest answer written. A real task's is tens of KiB; documents that would make it larger
/// (names thousands of bytes long, repeated in every family) are left out of the scrape, with
/// `ecs_up 0` and a warning, rather than held in memory.
pub const MAX_ANSWER: usize = 8 << 20;

/// The same in instance scope, where every task of the instance is written: sized from the
/// answer for 100 tasks of 10 containers that docs/footprint.md measures, with room for five
/// times it.
pub const MAX_INSTANCE_ANSWER: usize = 32 << 20;

/// What the server tells a scrape about itself, for the exporter's own metrics.
#[derive(Clone, Copy, Debug)]
pub struct Serving {
    pub answered: Answered,
    /// Metrics requests received and not yet answered, this one included.
    pub in_flight: u64,
    /// When the request arrived: one that arrived before the last fetch ended is answered from
    /// that fetch.
    pub arrived: Instant,
}

/// The scraping half of the exporter: owned by the server's loop, one scrape at a time.
pub struct Scraper {
    config: Config,
    start_time_seconds: Option<f64>,
    /// The exposition, its buffers reused from scrape to scrape.
    answer: Exposition,
    /// The last metadata fetch, which the scrapes that arrived while it ran (and those within
    /// `--ecs.min-refresh-interval` of it) are answered from.
    last: Option<Fetched>,
    /// The fetches, each document's on a thread of its own.
    fetching: Arc<Fetching>,
}

/// The documents one fetch got (`None` where fetching or decoding failed), and when it ended.
struct Fetched {
    at: Instant,
    tasks: Option<Vec<TaskMetadata>>,
    stats: Option<Vec<TaskStats>>,
}

/// Ends the wait for a fetch in flight, for good: on SIGTERM the exporter answers at once
/// instead of waiting for a slow agent, and the fetch is left to its thread until the process
/// exits. Made before the scraper, so that the shutdown handle can hold it from the start.
#[derive(Clone, Default)]
pub struct Abandon(Arc<Fetching>);

impl Abandon {
    pub fn abandon(&self) {
        self.0.lock().abandoned = true;
        self.0.changed.notify_all();
    }
}

impl Scraper {
    /// Starts the two threads that fetch the documents; `abandon` ends any wait for them.
    pub fn start(config: Config, abandon: &Abandon) -> std::io::Result<Scraper> {
        let fetching = Arc::clone(&abandon.0);
        let (on, task_config) = (Arc::clone(&fetching), config.clone());
        spawn_fetcher("task-fetcher", move || {
            on.serve(|s| &mut s.tasks, || read_tasks(&task_config))
        })?;
        let (on, stats_config) = (Arc::clone(&fetching), config.clone());
        spawn_fetcher("stats-fetcher", move || {
            on.serve(|s| &mut s.stats, || fetch_stats(&stats_config))
        })?;
        Ok(Scraper {
            config,
            start_time_seconds: process::start_time_seconds(),
            answer: Exposition::default(),
            last: None,
            fetching,
        })
    }

    /// fetch -> decode -> collect -> write; the exposition, or `None` once the fetch it waited
    /// for was abandoned (shutdown).
    pub fn scrape(&mut self, serving: Serving) -> Option<&mut Exposition> {
        let started = Instant::now();
        let logger = self.config.logger;
        // One fetch for every scrape that waited for it: a scrape that arrived before the last
        // fetch ended is answered from it, so however many arrive while the agent is slow,
        // each waits for at most the fetch in flight and the agent sees one fetch at a time.
        // Coalescing: within --ecs.min-refresh-interval of the last fetch too (failure
        // included), so that HA Prometheus pairs and other sidecars sharing the task's
        // metadata rate limit do not multiply the requests.
        let interval = self.config.min_refresh_interval;
        let reuse = self
            .last
            .as_ref()
            .is_some_and(|l| serving.arrived <= l.at || l.at.elapsed() < interval);
        if reuse {
            log!(logger, Debug, "reusing the last metadata fetch");
        } else {
            // Both documents at once while /task answers; at the first scrape and after a
            // failed /task, one after the other, so that a failing or rate-limiting endpoint
            // gets one request per scrape, not two.
            let last_ok = self.last.take().is_some_and(|l| l.tasks.is_some());
            let (tasks, stats) = self.fetching.read_metadata(last_ok).ok()?;
            // The stats are decoded against the tasks kept: theirs are the stats kept.
            let stats = match (&tasks, stats) {
                (Some(tasks), Some(fetched)) => read_stats(&self.config, fetched, tasks),
                _ => None,
            };
            self.last = Some(Fetched {
                at: Instant::now(),
                tasks,
                stats,
            });
        }
        let (tasks, stats) = match &self.last {
            Some(last) => (last.tasks.as_deref(), last.stats.as_deref()),
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
            tasks,
            stats,
            scope: self.config.scope,
            exporter,
            build: &version::BUILD,
            options: &self.config.collect,
        };
        let rendered = match render(&scrape, &mut self.answer) {
            Ok(rendered) => rendered,
            Err(e) => {
                log!(
                    logger,
                    Warn,
                    "metadata left out of the scrape",
                    "error" = &e
                );
                scrape.tasks = None;
                scrape.stats = None;
                render(&scrape, &mut self.answer).unwrap_or_default()
            }
        };
        let Pairing { ambiguous } = rendered.pairing;
        if ambiguous > 0 {
            log!(
                logger,
                Warn,
                "container stats left out: their container id is in more than one task or stats map",
                "ids" = ambiguous,
            );
        }
        if logger.enabled(Level::Debug) {
            let up = scrape.tasks.is_some() && scrape.stats.is_some();
            log!(
                logger,
                Debug,
                "scrape done",
                "up" = up,
                "tasks" = scrape.tasks.map_or(0, <[_]>::len),
                "samples" = rendered.samples,
                "bytes" = self.answer.len(),
                "duration" = &logging::Debug(started.elapsed()),
            );
        }
        Some(&mut self.answer)
    }
}

/// What [`render`] wrote.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rendered {
    pub samples: usize,
    pub pairing: Pairing,
}

/// collect -> write: the exposition of one scrape's documents, or [`TooLarge`] past
/// [`MAX_ANSWER`] bytes ([`MAX_INSTANCE_ANSWER`] in instance scope). Public so that the fuzzer
/// and the benchmarks run exactly what a scrape runs.
pub fn render(scrape: &Scrape, answer: &mut Exposition) -> Result<Rendered, TooLarge> {
    let limit = match scrape.scope {
        Scope::Task => MAX_ANSWER,
        Scope::Instance => MAX_INSTANCE_ANSWER,
    };
    answer.start(FAMILIES.len(), limit);
    let pairing = collect::collect(scrape, &mut |batch| answer.add(FAMILIES, TASK_LABEL, batch))?;
    Ok(Rendered {
        samples: answer.samples(),
        pairing,
    })
}

/// The fetches in flight: each document is fetched on a long-lived thread of its own, at the
/// loop's request, so that a scrape costs one round trip to the endpoint instead of two in a
/// row (minreq opens a connection per request; the endpoint may be slow to take one), and so
/// that the loop waits for a fetch on a condition variable that shutdown can end (a blocking
/// read cannot be interrupted). One mutex and one condition for both documents and the
/// abandonment: every change wakes every waiter, who looks at what it waits for.
#[derive(Default)]
struct Fetching {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    tasks: Job<Vec<TaskMetadata>>,
    /// Fetched, not decoded: the stats are decoded against the tasks (`read_stats`).
    stats: Job<Fetch>,
    abandoned: bool,
}

/// One document's fetch.
#[derive(Default)]
enum Job<T> {
    #[default]
    Idle,
    Requested,
    /// The document, or `None` where fetching or decoding failed (and was logged).
    Done(Option<T>),
}

/// The wait for a fetch ended by [`Abandon::abandon`].
#[derive(Debug)]
struct Abandoned;

type Which<T> = fn(&mut State) -> &mut Job<T>;

fn spawn_fetcher(name: &str, serve: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(256 * 1024)
        .spawn(serve)
        .map(drop)
}

impl Fetching {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(
        &self,
        state: std::sync::MutexGuard<'a, State>,
    ) -> std::sync::MutexGuard<'a, State> {
        self.changed
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn request<T>(&self, which: Which<T>) {
        *which(&mut self.lock()) = Job::Requested;
        self.changed.notify_all();
    }

    /// Waits for the requested fetch to finish (it has its own deadline, `--ecs.timeout`), or
    /// for the wait to be abandoned.
    fn result<T>(&self, which: Which<T>) -> Result<Option<T>, Abandoned> {
        let mut state = self.lock();
        loop {
            if state.abandoned {
                return Err(Abandoned);
            }
            if let Job::Done(_) = which(&mut state) {
                return match std::mem::take(which(&mut state)) {
                    Job::Done(document) => Ok(document),
                    _ => Ok(None),
                };
            }
            state = self.wait(state);
        }
    }

    /// A fetcher thread's life: each time its document is requested, fetch it.
    fn serve<T>(&self, which: Which<T>, fetch: impl Fn() -> Option<T>) {
        loop {
            let mut state = self.lock();
            while !matches!(which(&mut state), Job::Requested) {
                state = self.wait(state);
            }
            drop(state);
            let document = fetch();
            *which(&mut self.lock()) = Job::Done(document);
            self.changed.notify_all();
        }
    }

    /// Fetches and decodes the scope's two documents. After a fetch whose task document
    /// arrived (`both`), both at once: two requests. Otherwise the task document first, and
    /// the stats only if it arrived: without it there is nothing to match stats to (then
    /// stats fetched at the same time are dropped too).
    fn read_metadata(&self, both: bool) -> Result<Documents, Abandoned> {
        let tasks_job: Which<Vec<TaskMetadata>> = |s| &mut s.tasks;
        let stats_job: Which<Fetch> = |s| &mut s.stats;
        self.request(tasks_job);
        if both {
            self.request(stats_job);
        }
        let tasks = self.result(tasks_job)?;
        let stats = match (both, &tasks) {
            (true, _) => self.result(stats_job)?,
            (false, Some(_)) => {
                self.request(stats_job);
                self.result(stats_job)?
            }
            (false, None) => None,
        };
        let stats = if tasks.is_some() { stats } else { None };
        Ok((tasks, stats))
    }
}

type Documents = (Option<Vec<TaskMetadata>>, Option<Fetch>);

/// A document's body, and how long fetching it took.
struct Fetch {
    body: String,
    took: Duration,
}

fn read_tasks(config: &Config) -> Option<Vec<TaskMetadata>> {
    let (endpoint, _) = config.scope.endpoints();
    let labels = &config.collect.labels;
    let fetched = fetch_document(config, endpoint)?;
    decode_document(config, endpoint, fetched, |body| {
        decode_tasks(config.scope, body, labels)
    })
}

fn fetch_stats(config: &Config) -> Option<Fetch> {
    let (_, endpoint) = config.scope.endpoints();
    fetch_document(config, endpoint)
}

fn read_stats(config: &Config, fetched: Fetch, tasks: &[TaskMetadata]) -> Option<Vec<TaskStats>> {
    let (_, endpoint) = config.scope.endpoints();
    decode_document(config, endpoint, fetched, |body| {
        decode_stats(config.scope, body, tasks)
    })
}

/// decode: the scope's task document(s) as a list, with the container labels
/// `--ecs.container-labels` selects (the others are dropped here, so that collect reads only
/// what it writes). Public so that the fuzzer and the benchmarks decode exactly as a scrape does.
pub fn decode_tasks(
    scope: Scope,
    body: String,
    labels: &[String],
) -> Result<Decoded<Vec<TaskMetadata>>, DecodeError> {
    let mut decoded = match scope {
        Scope::Task => model::decode_task(body)?.map(|task| vec![task]),
        Scope::Instance => model::decode_tasks(body)?,
    };
    for task in &mut decoded.document {
        collect::select_labels(task, labels);
    }
    Ok(decoded)
}

/// decode: the scope's stats document(s) as a list, with the stats of the containers of
/// `tasks` (the others cut, as the tasks were). Public for the same reason.
pub fn decode_stats(
    scope: Scope,
    body: String,
    tasks: &[TaskMetadata],
) -> Result<Decoded<Vec<TaskStats>>, DecodeError> {
    Ok(match scope {
        Scope::Task => model::decode_stats(body, tasks)?.map(|stats| vec![stats]),
        Scope::Instance => model::decode_tasks_stats(body, tasks)?,
    })
}

/// fetch: a document's body, or `None` with a warning.
fn fetch_document(config: &Config, endpoint: Endpoint) -> Option<Fetch> {
    let started = Instant::now();
    let result = tmds::fetch(&config.metadata, endpoint, config.timeout).map_err(|e| match e {
        // What the EC2 agent (500) and others (404) answer a task that is not a daemon.
        FetchError::Status(404 | 405 | 500 | 501, _) if config.scope == Scope::Instance => {
            ReadError::NotServed(e)
        }
        e => ReadError::Fetch(e),
    });
    let took = started.elapsed();
    result
        .map(|body| Fetch { body, took })
        .map_err(|e| failed(config, endpoint, &e, took))
        .ok()
}

/// decode: a fetched document, or `None` with a warning.
fn decode_document<T>(
    config: &Config,
    endpoint: Endpoint,
    fetched: Fetch,
    decode: impl FnOnce(String) -> Result<Decoded<T>, DecodeError>,
) -> Option<T> {
    let logger = config.logger;
    let started = Instant::now();
    let decoded = decode(fetched.body);
    let took = fetched.took + started.elapsed();
    let Decoded {
        document,
        left_out,
        unclaimed,
    } = decoded
        .map_err(|e| failed(config, endpoint, &ReadError::Decode(e), took))
        .ok()?;
    if left_out > 0 {
        log!(
            logger,
            Warn,
            "metadata left out: more tasks, containers, interfaces or labels than the exporter reads",
            "endpoint" = &endpoint,
            "left_out" = left_out,
            "tasks" = model::MAX_TASKS,
            "containers_per_task" = model::MAX_CONTAINERS,
            "interfaces_per_container" = model::MAX_INTERFACES,
            "labels_per_container" = model::MAX_LABELS_PER_CONTAINER,
        );
    }
    if unclaimed > 0 {
        log!(
            logger,
            Debug,
            "stats of containers that no task kept lists (started or stopped between the requests, or left out)",
            "ids" = unclaimed,
        );
    }
    log!(
        logger,
        Debug,
        "metadata read",
        "endpoint" = &endpoint,
        "duration" = &logging::Debug(took),
    );
    Some(document)
}

fn failed(config: &Config, endpoint: Endpoint, e: &ReadError, took: Duration) {
    log!(
        config.logger,
        Warn,
        "metadata request failed",
        "endpoint" = &endpoint,
        "error" = e,
        "duration" = &logging::Debug(took),
    );
}

/// Why a document could not be read: fetching or decoding it failed.
#[derive(Debug)]
enum ReadError {
    Fetch(FetchError),
    /// An error status for an instance-scope document: most likely the exporter does not run as
    /// a managed daemon, and no retry will change that.
    NotServed(FetchError),
    Decode(DecodeError),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Fetch(e) => e.fmt(f),
            ReadError::NotServed(e) => write!(
                f,
                "{e}: --ecs.scope=instance reads /tasks and /tasks/stats, which the ECS agent \
                 serves only to a managed daemon on ECS Managed Instances; as a task's sidecar, \
                 run with --ecs.scope=task"
            ),
            ReadError::Decode(e) => e.fmt(f),
        }
    }
}
