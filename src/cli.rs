//! Command-line parsing: Go ecs_exporter v0.4.0's flags, with its names and defaults.
//!
//! Parsing is pure: it takes the arguments and the metadata variable's value and returns what to
//! do, or an error saying what is wrong. It never prints or exits; `main` does that once.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::collect::Options;
use crate::log::{Format, Level, Logger};
use crate::tmds::Source;

pub const METADATA_ENV: &str = "ECS_CONTAINER_METADATA_URI_V4";

pub const HELP: &str = "\
usage: ecs_exporter [<flags>]

Prometheus exporter for Amazon ECS: serves the task metadata endpoint v4's task and container
metrics. Runs as a sidecar inside an ECS task, where ECS sets ECS_CONTAINER_METADATA_URI_V4.

Flags:
  -h, --help                     Show this help and exit.
      --version                  Show the version and exit.
      --health-check             GET /health on the (first) listen address, print one line, and
                                 exit 0 if it answered 200, else 1 (for ECS healthCheck).
      --web.listen-address=:9779 ...
                                 Address to listen on (host:port, [ipv6]:port, or :port for all
                                 interfaces). Repeatable for multiple addresses.
      --[no-]web.systemd-socket  Use systemd socket activation listeners (LISTEN_FDS) instead
                                 of port listeners.
      --web.telemetry-path=\"/metrics\"
                                 Path under which to expose metrics: starts with '/', has no
                                 '?', '#' or whitespace, and is neither / nor /health.
      --[no-]web.disable-exporter-metrics
                                 Leave out the exporter's own process_* and promhttp_* metrics.
      --web.max-requests=40      Metrics requests waiting or in progress beyond this many are
                                 answered 503 at once (0: no limit).
      --web.max-connections=256  Client connections held beyond this many are answered 503 and
                                 closed (0: no limit).
      --web.idle-timeout=2m      Close a client connection that sends or takes nothing for this
                                 long, idle keep-alive included (1s to 1h).
      --web.config.file=\"\"       TLS and basic auth: not supported; only empty is accepted.
      --ecs.metadata-uri=URI     Task metadata endpoint base URL (default: the value of
                                 $ECS_CONTAINER_METADATA_URI_V4), or a directory holding
                                 task.json and stats.json, read on every scrape.
      --ecs.timeout=3s           Deadline for each metadata request, in whole seconds (1s-300s).
      --ecs.min-refresh-interval=0
                                 Scrapes within this long of the last metadata fetch reuse it
                                 (0 to 300s, like 500ms or 5s; 0: every scrape fetches).
      --[no-]collector.container Container info, known and health status, exit code, start time.
      --[no-]collector.memory    Container memory working set, maximum usage, limit failures,
                                 and memory_stats.stats (anonymous, file, slab, page faults...).
      --[no-]collector.cpu       Container user and system CPU time.
      --[no-]collector.storage   Container bytes and operations read from and written to block
                                 devices.
      --[no-]collector.pids      Container processes and threads, and their limit.
      --[no-]collector.container_network
                                 Per-container interface counters, for containers in bridge
                                 network mode.
                                 (All six on by default; with all six off, the Go exporter's
                                 families remain, with ecs_up and ecs_exporter_build_info.)
      --ecs.containers-exclude=PATTERN[,PATTERN...] ...
                                 No container-level metrics for containers whose name matches
                                 (`*` matches anything). Task and per-interface network
                                 metrics stay whole. Repeatable.
      --log.level=info           Only log messages of this severity or above: debug, info,
                                 warn, error.
      --log.format=logfmt        Log format on stderr: logfmt, json.
";

/// The flags that may be given more than once; every other flag given twice (in either of its
/// `--x`/`--no-x` spellings) is a usage error, as in the Go exporter's kingpin.
const REPEATABLE: [&str; 2] = ["web.listen-address", "ecs.containers-exclude"];

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Config),
    /// Check the health of a server listening on this address.
    HealthCheck(ListenAddress),
    Help,
    Version,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Every address to listen on, in the order given (never empty).
    pub listen: Vec<ListenAddress>,
    /// Take the listeners systemd passed (LISTEN_FDS) instead of binding `listen`.
    pub systemd_socket: bool,
    /// Metrics requests waiting or in progress beyond this many get 503 (0: no limit).
    pub max_requests: usize,
    /// Client connections held beyond this many get 503 and are closed (0: no limit).
    pub max_connections: usize,
    /// A client connection that sends or takes nothing for this long is closed.
    pub idle_timeout: Duration,
    pub telemetry_path: String,
    pub exporter_metrics: bool,
    pub metadata: Source,
    pub timeout: Duration,
    /// Scrapes within this long of the last metadata fetch reuse it (0: every scrape fetches).
    pub min_refresh_interval: Duration,
    pub logger: Logger,
    pub collect: Options,
}

/// `host:port`, as given to `--web.listen-address`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenAddress {
    /// Empty for all interfaces; brackets of an IPv6 literal removed.
    pub host: String,
    pub port: u16,
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

#[derive(Debug, PartialEq, Eq)]
pub enum CliError {
    /// A flag or value is wrong (exit status 2).
    Usage(String),
    /// No usable metadata endpoint is known (exit status 1, as the Go exporter). Logged as
    /// a start-up failure in the format the command line chose.
    NoMetadata(Logger, String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::NoMetadata(..) => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(msg) | CliError::NoMetadata(_, msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for CliError {}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

/// Parses the arguments (without the program name). `env_uri` is the value of
/// `ECS_CONTAINER_METADATA_URI_V4`, if set.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env_uri: Option<OsString>,
) -> Result<Command, CliError> {
    use lexopt::prelude::*;

    let mut listen = Vec::new();
    let mut systemd_socket = false;
    let mut max_requests = 40;
    let mut max_connections = 256;
    let mut idle_timeout = Duration::from_secs(120);
    let mut seen: Vec<String> = Vec::new();
    let mut telemetry_path = "/metrics".to_owned();
    let mut exporter_metrics = true;
    let mut metadata_flag = None;
    let mut timeout = Duration::from_secs(3);
    let mut min_refresh_interval = Duration::ZERO;
    let mut collect = Options::default();
    let mut logger = Logger {
        level: Level::Info,
        format: Format::Logfmt,
    };
    let mut health_check = false;

    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(describe)? {
        if let Long(flag) = &arg {
            let name = flag.strip_prefix("no-").unwrap_or(flag);
            if !REPEATABLE.contains(&name) {
                if seen.iter().any(|s| s == name) {
                    return Err(usage(format!("flag '{name}' cannot be repeated")));
                }
                seen.push(name.to_owned());
            }
        }
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Long("version") => return Ok(Command::Version),
            Long("health-check") => health_check = true,
            Long("web.listen-address") => {
                listen.push(parse_listen(&string_value(
                    &mut parser,
                    "--web.listen-address",
                )?)?);
            }
            Long("web.systemd-socket") => systemd_socket = true,
            Long("no-web.systemd-socket") => systemd_socket = false,
            Long("web.max-requests") => {
                max_requests = parse_count(&mut parser, "--web.max-requests")?;
            }
            Long("web.max-connections") => {
                max_connections = parse_count(&mut parser, "--web.max-connections")?;
            }
            Long("web.idle-timeout") => {
                let value = string_value(&mut parser, "--web.idle-timeout")?;
                idle_timeout = parse_duration(&value)
                    .filter(|d| (1..=3600).contains(&d.as_secs()) && d.subsec_nanos() == 0)
                    .ok_or_else(|| {
                        usage(format!(
                            "--web.idle-timeout {value:?}: expected whole seconds from 1s to 1h, like 30s or 2m"
                        ))
                    })?;
            }
            Long("web.telemetry-path") => {
                telemetry_path = string_value(&mut parser, "--web.telemetry-path")?;
                check_telemetry_path(&telemetry_path)?;
            }
            Long("web.disable-exporter-metrics") => exporter_metrics = false,
            Long("no-web.disable-exporter-metrics") => exporter_metrics = true,
            Long("web.config.file") => {
                let file = string_value(&mut parser, "--web.config.file")?;
                // Never serve plain HTTP to someone who asked for TLS or basic auth.
                if !file.is_empty() {
                    return Err(usage(
                        "--web.config.file (TLS and basic auth) is not supported yet: remove it to \
                         serve plain HTTP, or put a TLS proxy in front of the exporter",
                    ));
                }
            }
            Long("ecs.metadata-uri") => {
                metadata_flag = Some(parse_source_flag(&string_value(
                    &mut parser,
                    "--ecs.metadata-uri",
                )?)?);
            }
            Long(flag) if collector_flag(flag, &mut collect).is_some() => {}
            Long("ecs.containers-exclude") => {
                let value = string_value(&mut parser, "--ecs.containers-exclude")?;
                let patterns = value
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned);
                collect.exclude.extend(patterns);
            }
            Long("ecs.timeout") => {
                timeout = parse_timeout(&string_value(&mut parser, "--ecs.timeout")?)?
            }
            Long("ecs.min-refresh-interval") => {
                let value = string_value(&mut parser, "--ecs.min-refresh-interval")?;
                min_refresh_interval = parse_refresh_interval(&value)?;
            }
            Long("log.level") => {
                let value = string_value(&mut parser, "--log.level")?;
                logger.level = Level::parse(&value).ok_or_else(|| {
                    usage(format!(
                        "--log.level {value:?}: must be one of {}",
                        Level::NAMES
                    ))
                })?;
            }
            Long("log.format") => {
                let value = string_value(&mut parser, "--log.format")?;
                logger.format = Format::parse(&value).ok_or_else(|| {
                    usage(format!(
                        "--log.format {value:?}: must be one of {}",
                        Format::NAMES
                    ))
                })?;
            }
            _ => return Err(describe(arg.unexpected())),
        }
    }

    if listen.is_empty() {
        listen.push(ListenAddress {
            host: String::new(),
            port: 9779,
        });
    }
    if health_check {
        // The check only needs the address; it runs where the metadata variable may be unset.
        return Ok(Command::HealthCheck(listen.swap_remove(0)));
    }
    let metadata = match metadata_flag {
        Some(source) => source,
        None => source_from_env(env_uri).map_err(|msg| CliError::NoMetadata(logger, msg))?,
    };
    Ok(Command::Run(Config {
        listen,
        systemd_socket,
        max_requests,
        max_connections,
        idle_timeout,
        telemetry_path,
        exporter_metrics,
        metadata,
        timeout,
        min_refresh_interval,
        logger,
        collect,
    }))
}

/// `--collector.NAME` / `--no-collector.NAME` for the six groups, node_exporter style.
fn collector_flag(flag: &str, options: &mut Options) -> Option<()> {
    let (on, group) = match flag.strip_prefix("no-") {
        Some(rest) => (false, rest.strip_prefix("collector.")?),
        None => (true, flag.strip_prefix("collector.")?),
    };
    let switch = match group {
        "container" => &mut options.container,
        "memory" => &mut options.memory,
        "cpu" => &mut options.cpu,
        "storage" => &mut options.storage,
        "pids" => &mut options.pids,
        "container_network" => &mut options.container_network,
        _ => return None,
    };
    *switch = on;
    Some(())
}

/// A whole number of requests or connections; 0 is no limit.
fn parse_count(parser: &mut lexopt::Parser, flag: &str) -> Result<usize, CliError> {
    let value = string_value(parser, flag)?;
    value.parse().map_err(|_| {
        usage(format!(
            "{flag} {value:?}: expected a whole number (0: no limit)"
        ))
    })
}

fn string_value(parser: &mut lexopt::Parser, flag: &str) -> Result<String, CliError> {
    let value = parser.value().map_err(describe)?;
    value
        .into_string()
        .map_err(|v| usage(format!("{flag} {v:?}: not valid UTF-8")))
}

/// Turns lexopt's errors into one line that names the flag and says what to do.
fn describe(e: lexopt::Error) -> CliError {
    use lexopt::Error as E;
    usage(match e {
        E::UnexpectedOption(flag) => format!("unknown flag '{flag}' (see --help for the flags)"),
        E::UnexpectedArgument(arg) => {
            format!("unexpected argument {arg:?}: ecs_exporter takes only flags (see --help)")
        }
        E::MissingValue { option: Some(flag) } => format!("{flag} needs a value"),
        E::UnexpectedValue { option, .. } => format!("{option} takes no value"),
        other => other.to_string(),
    })
}

fn parse_listen(value: &str) -> Result<ListenAddress, CliError> {
    let bad = || {
        usage(format!(
            "--web.listen-address {value:?}: expected host:port, [ipv6]:port or :port with a port from 0 to 65535"
        ))
    };
    if value.starts_with("vsock://") {
        return Err(usage(format!(
            "--web.listen-address {value:?}: vsock is not supported; listen on TCP (host:port)"
        )));
    }
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    Ok(ListenAddress {
        host: host.to_owned(),
        port,
    })
}

fn parse_source_flag(value: &str) -> Result<Source, CliError> {
    if value.is_empty() {
        return Err(usage(
            "--ecs.metadata-uri is empty: give an http:// URL or a directory",
        ));
    }
    match parse_url(value) {
        Some(Ok(url)) => Ok(Source::Http(url)),
        Some(Err(problem)) => Err(usage(format!(
            "--ecs.metadata-uri {:?}: {problem}",
            redacted(value)
        ))),
        None => Ok(Source::Dir(PathBuf::from(value))),
    }
}

/// What is wrong with a URL given for the metadata endpoint.
#[derive(Debug, PartialEq, Eq)]
enum UrlProblem<'a> {
    Scheme(&'a str),
    NoHost,
    Port(&'a str),
    Credentials,
}

impl fmt::Display for UrlProblem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlProblem::Scheme(scheme) => write!(
                f,
                "unsupported scheme {scheme:?}; the ECS metadata endpoint is plain http://"
            ),
            UrlProblem::NoHost => f.write_str("the URL has no host"),
            UrlProblem::Port(port) => write!(f, "port {port:?} is not a port from 1 to 65535"),
            UrlProblem::Credentials => f.write_str(
                "credentials in the URL are not supported (the ECS metadata endpoint takes none)",
            ),
        }
    }
}

/// `Some(Ok(base))` for an http:// URL with a host and a valid port, if any (trailing slashes
/// trimmed); `Some(Err(problem))` for a URL that cannot serve; `None` for something that is not
/// a URL.
fn parse_url(value: &str) -> Option<Result<String, UrlProblem<'_>>> {
    let (scheme, rest) = value.split_once("://")?;
    let is_scheme = scheme
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if scheme.is_empty() || !is_scheme {
        return None;
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Some(Err(UrlProblem::Scheme(scheme)));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Some(Err(UrlProblem::Credentials));
    }
    // An IPv6 literal's colons are inside its brackets.
    let after_host = authority.rfind(']').unwrap_or(0);
    let (host, port) = match authority[after_host..].rfind(':') {
        Some(at) => (
            &authority[..after_host + at],
            Some(&authority[after_host + at + 1..]),
        ),
        None => (authority, None),
    };
    if host.is_empty() || host == "[]" {
        return Some(Err(UrlProblem::NoHost));
    }
    if let Some(port) = port.filter(|p| !p.is_empty())
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Some(Err(UrlProblem::Port(port)));
    }
    Some(Ok(value.trim_end_matches('/').to_owned()))
}

/// `value` with the password of any `user:password@` replaced by `xxxxx`, as Go's
/// `url.URL.Redacted` writes it, for messages that repeat what was given.
pub fn redacted(value: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = value.split_once("://") else {
        return value.into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    match authority.rsplit_once('@') {
        Some((userinfo, _)) => match userinfo.split_once(':') {
            Some((user, _)) => {
                let host_and_rest = &rest[userinfo.len()..];
                format!("{scheme}://{user}:xxxxx{host_and_rest}").into()
            }
            None => value.into(),
        },
        None => value.into(),
    }
}

/// The variable ECS sets; anything wrong with it is a start-up failure (exit 1), as in Go.
fn source_from_env(env_uri: Option<OsString>) -> Result<Source, String> {
    let Some(uri) = env_uri else {
        return Err(format!(
            "{METADATA_ENV} is not set: ecs_exporter runs inside an ECS task, where ECS sets it \
             (elsewhere, pass --ecs.metadata-uri with a URL or a fixtures directory)"
        ));
    };
    if uri.is_empty() {
        return Err(format!(
            "{METADATA_ENV} is empty: ecs_exporter expects the URL ECS sets \
             (elsewhere, pass --ecs.metadata-uri with a URL or a fixtures directory)"
        ));
    }
    let text = uri.to_string_lossy();
    let shown = redacted(&text);
    match uri.to_str().and_then(parse_url) {
        Some(Ok(url)) => Ok(Source::Http(url)),
        Some(Err(problem)) => Err(format!("{METADATA_ENV} is {shown:?}: {problem}")),
        None => Err(format!(
            "{METADATA_ENV} is {shown:?}, not an http:// URL: ecs_exporter expects the value ECS sets"
        )),
    }
}

/// A path the router can match exactly and that hides neither `/` nor `/health`.
fn check_telemetry_path(path: &str) -> Result<(), CliError> {
    let why = if !path.starts_with('/') {
        "must start with '/'"
    } else if path.contains(['?', '#']) || path.chars().any(char::is_whitespace) {
        "must not hold '?', '#' or whitespace (the path is matched without the query string)"
    } else if path == "/" || path == "/health" {
        "would hide the landing page or /health; pick another path"
    } else {
        return Ok(());
    };
    Err(usage(format!("--web.telemetry-path {path:?}: {why}")))
}

/// `500ms`, `3s`, `1m`, `1h` or a bare number of seconds: the units of every duration flag.
fn parse_duration(value: &str) -> Option<Duration> {
    let (number, millis_per_unit) = if let Some(n) = value.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = value.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = value.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        (value, 1000)
    };
    let n: u64 = number.parse().ok()?;
    Some(Duration::from_millis(n.checked_mul(millis_per_unit)?))
}

/// Whole seconds from 1 to 300: minreq's deadline counts in seconds.
fn parse_timeout(value: &str) -> Result<Duration, CliError> {
    parse_duration(value)
        .filter(|d| d.subsec_nanos() == 0 && (1..=300).contains(&d.as_secs()))
        .ok_or_else(|| {
            usage(format!(
                "--ecs.timeout {value:?}: expected whole seconds from 1s to 300s, like 3s or 1m"
            ))
        })
}

/// 0 (off) to 300 s.
fn parse_refresh_interval(value: &str) -> Result<Duration, CliError> {
    parse_duration(value).filter(|d| *d <= Duration::from_secs(300)).ok_or_else(|| {
        usage(format!(
            "--ecs.min-refresh-interval {value:?}: expected a duration from 0 to 300s, like 0, 500ms or 5s"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: Option<&str> = Some("http://169.254.170.2/v4/abc");

    fn run(args: &[&str], env: Option<&str>) -> Result<Command, CliError> {
        parse(args.iter().map(OsString::from), env.map(OsString::from))
    }

    fn config(args: &[&str]) -> Config {
        match run(args, ENV) {
            Ok(Command::Run(c)) => c,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn error(args: &[&str], env: Option<&str>) -> String {
        match run(args, env) {
            Err(e) => format!("{} {e}", e.exit_code()),
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_go_exporter() {
        let c = config(&[]);
        assert_eq!(
            c.listen,
            [ListenAddress {
                host: String::new(),
                port: 9779
            }]
        );
        assert!(!c.systemd_socket);
        assert_eq!(c.max_requests, 40);
        assert_eq!(c.idle_timeout, Duration::from_secs(120));
        assert_eq!(c.telemetry_path, "/metrics");
        assert!(c.exporter_metrics);
        assert_eq!(
            c.metadata,
            Source::Http("http://169.254.170.2/v4/abc".into())
        );
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(
            c.logger,
            Logger {
                level: Level::Info,
                format: Format::Logfmt
            }
        );
    }

    #[test]
    fn flags_in_both_spellings() {
        let c = config(&[
            "--web.listen-address=127.0.0.1:9000",
            "--web.telemetry-path",
            "/m",
            "--web.disable-exporter-metrics",
            "--log.level=debug",
            "--log.format",
            "json",
            "--ecs.timeout=1m",
            "--ecs.metadata-uri",
            "fixtures/fargate",
        ]);
        assert_eq!(
            c.listen,
            [ListenAddress {
                host: "127.0.0.1".into(),
                port: 9000
            }]
        );
        assert_eq!(c.telemetry_path, "/m");
        assert!(!c.exporter_metrics);
        assert_eq!(
            c.logger,
            Logger {
                level: Level::Debug,
                format: Format::Json
            }
        );
        assert_eq!(c.timeout, Duration::from_secs(60));
        assert_eq!(c.metadata, Source::Dir("fixtures/fargate".into()));
        assert!(config(&["--no-web.disable-exporter-metrics"]).exporter_metrics);
        let listen = config(&[
            "--web.listen-address=[::1]:80",
            "--web.listen-address",
            ":81",
        ])
        .listen;
        let listen: Vec<String> = listen.iter().map(ToString::to_string).collect();
        assert_eq!(listen, ["[::1]:80", ":81"]);
        let c = config(&[
            "--web.systemd-socket",
            "--web.max-requests=0",
            "--web.max-connections=3",
            "--web.idle-timeout=30s",
        ]);
        assert!(c.systemd_socket);
        assert_eq!(c.max_requests, 0);
        assert_eq!(c.max_connections, 3);
        assert_eq!(c.idle_timeout, Duration::from_secs(30));
        assert_eq!(config(&[]).max_connections, 256);
        let idle = |v: &str| config(&[&format!("--web.idle-timeout={v}")]).idle_timeout;
        assert_eq!(idle("1h"), Duration::from_secs(3600));
        assert_eq!(idle("2m"), Duration::from_secs(120));
        assert_eq!(idle("1000ms"), Duration::from_secs(1));
        assert_eq!(
            config(&["--ecs.timeout=2000ms"]).timeout,
            Duration::from_secs(2)
        );
        assert_eq!(
            config(&["--ecs.metadata-uri=http://x/v4/"]).metadata,
            Source::Http("http://x/v4".into())
        );
        assert_eq!(config(&["--web.config.file="]).listen[0].port, 9779);
        let c = config(&[
            "--no-collector.memory",
            "--collector.cpu",
            "--no-collector.storage",
            "--no-collector.container",
            "--no-collector.pids",
            "--collector.container_network",
            "--ecs.containers-exclude=ecs-*,,init",
            "--ecs.containers-exclude",
            "*~pause",
        ]);
        assert_eq!(
            c.collect,
            Options {
                container: false,
                memory: false,
                cpu: true,
                storage: false,
                pids: false,
                container_network: true,
                exclude: vec!["ecs-*".into(), "init".into(), "*~pause".into()],
            }
        );
        assert_eq!(config(&[]).collect, Options::default());
        assert_eq!(config(&[]).min_refresh_interval, Duration::ZERO);
        let refresh =
            |v: &str| config(&[&format!("--ecs.min-refresh-interval={v}")]).min_refresh_interval;
        assert_eq!(refresh("500ms"), Duration::from_millis(500));
        assert_eq!(refresh("5s"), Duration::from_secs(5));
        assert_eq!(refresh("0"), Duration::ZERO);
        assert_eq!(refresh("300s"), Duration::from_secs(300));
        assert!(run(&["--ecs.min-refresh-interval=300001ms"], ENV).is_err());
        // Something that only looks like a URL is a directory.
        for dir in ["://x", "my dir://x", "./a://b"] {
            assert_eq!(
                config(&["--ecs.metadata-uri", dir]).metadata,
                Source::Dir(dir.into()),
                "{dir}"
            );
        }
    }

    #[test]
    fn help_and_version_are_values() {
        assert_eq!(run(&["-h"], None), Ok(Command::Help));
        assert_eq!(
            run(&["--log.level=debug", "--help"], None),
            Ok(Command::Help)
        );
        assert_eq!(run(&["--version"], None), Ok(Command::Version));
        assert_eq!(
            run(&["--health-check", "--web.listen-address=:9000"], None),
            Ok(Command::HealthCheck(ListenAddress {
                host: String::new(),
                port: 9000
            }))
        );
        assert_eq!(
            run(&["--health-check", "--web.listen-address=oops"], None).map_err(|e| e.exit_code()),
            Err(2)
        );
    }

    #[test]
    fn bad_flags_exit_2_with_one_line_naming_them() {
        let rows: &[(&[&str], &str)] = &[
            (
                &["--web.listen-addres=:1"],
                "2 unknown flag '--web.listen-addres' (see --help for the flags)",
            ),
            (
                &["--ecs.min-refresh-interval=1h"],
                "2 --ecs.min-refresh-interval \"1h\": expected a duration from 0 to 300s, like 0, 500ms or 5s",
            ),
            (
                &["--collector.network"],
                "2 unknown flag '--collector.network' (see --help for the flags)",
            ),
            (
                &["serve"],
                "2 unexpected argument \"serve\": ecs_exporter takes only flags (see --help)",
            ),
            (&["--log.level"], "2 --log.level needs a value"),
            (
                &["--log.level=verbose"],
                "2 --log.level \"verbose\": must be one of debug, info, warn, error",
            ),
            (
                &["--log.format=text"],
                "2 --log.format \"text\": must be one of logfmt, json",
            ),
            (
                &["--web.disable-exporter-metrics=true"],
                "2 --web.disable-exporter-metrics takes no value",
            ),
            (
                &["--web.listen-address=9779"],
                "2 --web.listen-address \"9779\": expected host:port, [ipv6]:port or :port with a port from 0 to 65535",
            ),
            (
                &["--web.listen-address=:99999"],
                "2 --web.listen-address \":99999\": expected host:port, [ipv6]:port or :port with a port from 0 to 65535",
            ),
            (
                &["--web.listen-address=::1:80"],
                "2 --web.listen-address \"::1:80\": expected host:port, [ipv6]:port or :port with a port from 0 to 65535",
            ),
            (
                &["--web.listen-address=vsock://:9100"],
                "2 --web.listen-address \"vsock://:9100\": vsock is not supported; listen on TCP (host:port)",
            ),
            (
                &["--web.telemetry-path=/a", "--web.telemetry-path=/b"],
                "2 flag 'web.telemetry-path' cannot be repeated",
            ),
            (
                &["--collector.cpu", "--no-collector.cpu"],
                "2 flag 'collector.cpu' cannot be repeated",
            ),
            (
                &["--web.telemetry-path=/m?x=1"],
                "2 --web.telemetry-path \"/m?x=1\": must not hold '?', '#' or whitespace (the path is matched without the query string)",
            ),
            (
                &["--web.telemetry-path=/health"],
                "2 --web.telemetry-path \"/health\": would hide the landing page or /health; pick another path",
            ),
            (
                &["--web.telemetry-path=/"],
                "2 --web.telemetry-path \"/\": would hide the landing page or /health; pick another path",
            ),
            (
                &["--web.max-requests=-1"],
                "2 --web.max-requests \"-1\": expected a whole number (0: no limit)",
            ),
            (
                &["--web.idle-timeout=0s"],
                "2 --web.idle-timeout \"0s\": expected whole seconds from 1s to 1h, like 30s or 2m",
            ),
            (
                &["--web.idle-timeout=2h"],
                "2 --web.idle-timeout \"2h\": expected whole seconds from 1s to 1h, like 30s or 2m",
            ),
            (
                &["--web.max-connections=many"],
                "2 --web.max-connections \"many\": expected a whole number (0: no limit)",
            ),
            (
                &["--ecs.metadata-uri=ftp://x/v4"],
                "2 --ecs.metadata-uri \"ftp://x/v4\": unsupported scheme \"ftp\"; the ECS metadata endpoint is plain http://",
            ),
            (
                &["--web.telemetry-path=metrics"],
                "2 --web.telemetry-path \"metrics\": must start with '/'",
            ),
            (
                &["--ecs.timeout=500ms"],
                "2 --ecs.timeout \"500ms\": expected whole seconds from 1s to 300s, like 3s or 1m",
            ),
            (
                &["--ecs.timeout=0s"],
                "2 --ecs.timeout \"0s\": expected whole seconds from 1s to 300s, like 3s or 1m",
            ),
            (
                &["--ecs.timeout=1h"],
                "2 --ecs.timeout \"1h\": expected whole seconds from 1s to 300s, like 3s or 1m",
            ),
            (
                &["--ecs.metadata-uri=https://x"],
                "2 --ecs.metadata-uri \"https://x\": unsupported scheme \"https\"; the ECS metadata endpoint is plain http://",
            ),
            (
                &["--ecs.metadata-uri=http://"],
                "2 --ecs.metadata-uri \"http://\": the URL has no host",
            ),
            (
                &["--ecs.metadata-uri=http://:80/v4"],
                "2 --ecs.metadata-uri \"http://:80/v4\": the URL has no host",
            ),
            (
                &["--ecs.metadata-uri=http://169.254.170.2:99999/v4"],
                "2 --ecs.metadata-uri \"http://169.254.170.2:99999/v4\": port \"99999\" is not a port from 1 to 65535",
            ),
            (
                &["--ecs.metadata-uri=http://h:0"],
                "2 --ecs.metadata-uri \"http://h:0\": port \"0\" is not a port from 1 to 65535",
            ),
            (
                &["--ecs.metadata-uri=http://[::1]:x/v4"],
                "2 --ecs.metadata-uri \"http://[::1]:x/v4\": port \"x\" is not a port from 1 to 65535",
            ),
            (
                &["--ecs.metadata-uri=http://user:s3cret@169.254.170.2/v4"],
                "2 --ecs.metadata-uri \"http://user:xxxxx@169.254.170.2/v4\": credentials in the URL are not supported (the ECS metadata endpoint takes none)",
            ),
        ];
        for &(args, want) in rows {
            assert_eq!(error(args, ENV), want, "{args:?}");
        }
        let tls = error(&["--web.config.file=web.yml"], ENV);
        assert!(
            tls.starts_with("2 --web.config.file (TLS and basic auth) is not supported yet"),
            "{tls}"
        );
    }

    #[test]
    fn metadata_source_from_flag_or_environment() {
        let missing = error(&[], None);
        assert!(
            missing.starts_with(
                "1 ECS_CONTAINER_METADATA_URI_V4 is not set: ecs_exporter runs inside an ECS task"
            ),
            "{missing}"
        );
        assert!(error(&[], Some("")).starts_with("1 ECS_CONTAINER_METADATA_URI_V4 is empty"));
        assert!(error(&[], Some("unix:///run/x")).starts_with(
            "1 ECS_CONTAINER_METADATA_URI_V4 is \"unix:///run/x\": unsupported scheme \"unix\""
        ));
        assert!(error(&[], Some("169.254.170.2/v4")).starts_with(
            "1 ECS_CONTAINER_METADATA_URI_V4 is \"169.254.170.2/v4\", not an http:// URL"
        ));
        let secret = error(&[], Some("http://u:s3cret@169.254.170.2/v4/x"));
        assert_eq!(
            secret,
            "1 ECS_CONTAINER_METADATA_URI_V4 is \"http://u:xxxxx@169.254.170.2/v4/x\": credentials in the URL are not supported (the ECS metadata endpoint takes none)"
        );
        for ok in [
            "http://[::1]:80/v4",
            "http://h:65535",
            "http://h:/v4",
            "HTTP://h/v4",
        ] {
            assert!(parse_url(ok).is_some_and(|r| r.is_ok()), "{ok}");
        }
        assert_eq!(redacted("http://u@h/p"), "http://u@h/p");
        assert_eq!(redacted("http://h/p@q"), "http://h/p@q");
        let c = match run(&["--ecs.metadata-uri=fixtures/ec2"], Some("http://ignored")) {
            Ok(Command::Run(c)) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            c.metadata,
            Source::Dir("fixtures/ec2".into()),
            "the flag overrides the variable"
        );
    }

    /// The help and the parser cannot drift: every flag the help shows parses, and every flag
    /// the parser takes is in the help.
    #[test]
    fn every_flag_in_the_help_parses_and_every_parsed_flag_is_in_the_help() {
        let mut shown = Vec::new();
        for line in HELP.lines().filter(|l| l.starts_with("  ")) {
            for word in line.split_whitespace() {
                let word = word.trim_end_matches(',');
                if let Some(rest) = word.strip_prefix("--") {
                    let name = rest.split('=').next().unwrap_or(rest);
                    match name.strip_prefix("[no-]") {
                        Some(base) => {
                            shown.push(base.to_owned());
                            shown.push(format!("no-{base}"));
                        }
                        None => shown.push(name.to_owned()),
                    }
                }
            }
        }
        let value = |flag: &str| match flag {
            "web.listen-address" => Some(":1"),
            "web.telemetry-path" => Some("/m"),
            "web.max-requests" | "web.max-connections" => Some("1"),
            "web.idle-timeout" | "ecs.timeout" => Some("1s"),
            "web.config.file" => Some(""),
            "ecs.metadata-uri" => Some("http://x"),
            "ecs.min-refresh-interval" => Some("1s"),
            "ecs.containers-exclude" => Some("x"),
            "log.level" => Some("warn"),
            "log.format" => Some("json"),
            _ => None,
        };
        assert!(shown.len() > 20, "{shown:?}");
        for flag in &shown {
            let arg = match value(flag) {
                Some(v) => format!("--{flag}={v}"),
                None => format!("--{flag}"),
            };
            assert!(
                run(&[&arg], ENV).is_ok(),
                "{arg} is in --help but does not parse"
            );
        }
        // Every `Long("...")` arm of the parser, read from this file's source.
        let source = include_str!("cli.rs");
        let parsed = source
            .split("Long(\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|name| name.starts_with(|c: char| c.is_ascii_lowercase()))
            .filter(|name| {
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b"-.".contains(&b))
            });
        for name in parsed {
            assert!(
                shown.iter().any(|s| s == name),
                "--{name} parses but --help does not show it"
            );
        }
        for group in [
            "container",
            "memory",
            "cpu",
            "storage",
            "pids",
            "container_network",
        ] {
            assert!(shown.contains(&format!("collector.{group}")), "{group}");
        }
    }
}
