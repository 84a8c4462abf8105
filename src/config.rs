//! The configuration the command line builds and the rest of the program reads: what to
//! serve, where from, and how. Serving (`server`), scraping (`scrape`) and `--health-check`
//! depend on this, never on the argument parser (`cli`), which only fills it in.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::collect::Options;
use crate::log::{Format, Level, Logger};
use crate::tmds::{Scope, Source};

/// Everything a run needs. [`Default`] holds the Go exporter's defaults, and ours; the flags
/// change it field by field (`cli`).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Every address to listen on, in the order given (never empty).
    pub listen: Vec<ListenAddress>,
    /// Take the listeners systemd passed (LISTEN_FDS) instead of binding `listen`.
    pub systemd_socket: bool,
    /// Metrics requests waiting or in progress beyond this many get 503 (0: no limit).
    pub max_requests: usize,
    /// Client connections held at once; at the cap another makes room (tiny_http's `Limits`),
    /// and a new one gets 503 only when every held one is owed an answer (0: no limit).
    pub max_connections: usize,
    /// A client connection that sends or takes nothing for this long is closed.
    pub idle_timeout: Duration,
    pub telemetry_path: String,
    pub exporter_metrics: bool,
    /// The endpoint, or a directory standing in for it. It has no default: the command line
    /// sets it from `--ecs.metadata-uri` or `$ECS_CONTAINER_METADATA_URI_V4`, and the default
    /// (an empty directory name) never reaches a scrape.
    pub metadata: Source,
    /// Which documents a scrape reads: the exporter's task's, or every task's on the instance.
    pub scope: Scope,
    pub timeout: Duration,
    /// Scrapes within this long of the last metadata fetch reuse it (0: every scrape fetches).
    pub min_refresh_interval: Duration,
    pub logger: Logger,
    pub collect: Options,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![ListenAddress::DEFAULT],
            systemd_socket: false,
            max_requests: 40,
            max_connections: 256,
            idle_timeout: Duration::from_secs(120),
            telemetry_path: "/metrics".to_owned(),
            exporter_metrics: true,
            metadata: Source::Dir(PathBuf::new()),
            scope: Scope::Task,
            timeout: Duration::from_secs(3),
            min_refresh_interval: Duration::ZERO,
            logger: Logger {
                level: Level::Info,
                format: Format::Logfmt,
            },
            collect: Options::default(),
        }
    }
}

/// `host:port`, as given to `--web.listen-address`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenAddress {
    /// Empty for all interfaces; brackets of an IPv6 literal removed.
    pub host: String,
    pub port: u16,
}

impl ListenAddress {
    /// `:9779`, the Go exporter's (every interface).
    pub const DEFAULT: ListenAddress = ListenAddress {
        host: String::new(),
        port: 9779,
    };
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}
