//! Command-line parsing: Go ecs_exporter v0.4.0's flags, with its names and defaults, and ours.
//!
//! Every flag is a row of [`FLAGS`]: its name, how `--help` shows it, its help text and what it
//! sets; the collector groups' `--[no-]collector.NAME` come from `collect::GROUPS`. The parser
//! and `--help` both read those tables, so neither can list a flag the other does not.
//!
//! Parsing is pure: it takes the arguments and the metadata variable's value and returns what to
//! do, or an error saying what is wrong. It never prints or exits; `main` does that once.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::collect::{GROUPS, Options};
use crate::log::{Format, Level, Logger};
use crate::tmds::{Scope, Source};

pub const METADATA_ENV: &str = "ECS_CONTAINER_METADATA_URI_V4";

const USAGE: &str = "\
usage: ecs_exporter [<flags>]

Prometheus exporter for Amazon ECS: serves the task metadata endpoint v4's task and container
metrics. Runs as a sidecar inside an ECS task, where ECS sets ECS_CONTAINER_METADATA_URI_V4.
";

/// One flag.
pub struct Flag {
    /// `--NAME`.
    pub name: &'static str,
    /// After the name in `--help`: `=DEFAULT` or `=VALUE`, and ` ...` if repeatable.
    shown: &'static str,
    /// `--help`'s text; a newline starts another line of it.
    help: &'static str,
    pub kind: Kind,
}

/// What a flag takes, and what it sets.
pub enum Kind {
    /// Stops parsing and answers at once (`--help`, `--version`).
    Now(fn() -> Command),
    /// No value; `--no-NAME` too if `negatable`.
    Switch {
        negatable: bool,
        set: fn(&mut Settings, bool),
    },
    /// A value, once or, if `repeatable`, any number of times.
    Value {
        repeatable: bool,
        /// A value the flag takes, for the tests.
        example: &'static str,
        set: fn(&mut Settings, &str) -> Result<(), CliError>,
    },
}

/// Every flag, in the order of `--help`.
pub static FLAGS: &[Flag] = &[
    Flag {
        name: "help",
        shown: "",
        help: "Show this help and exit.",
        kind: Kind::Now(|| Command::Help),
    },
    Flag {
        name: "version",
        shown: "",
        help: "Show the version and exit.",
        kind: Kind::Now(|| Command::Version),
    },
    Flag {
        name: "health-check",
        shown: "",
        help: "GET /health on the (first) listen address, print one line, and\n\
               exit 0 if it answered 200, else 1 (for ECS healthCheck).",
        kind: Kind::Switch {
            negatable: false,
            set: |s, _| s.health_check = true,
        },
    },
    Flag {
        name: "web.listen-address",
        shown: "=:9779 ...",
        help: "Address to listen on (host:port, [ipv6]:port, or :port for all\n\
               interfaces). Repeatable for multiple addresses.",
        kind: Kind::Value {
            repeatable: true,
            example: "127.0.0.1:9779",
            set: |s, v| parse_listen(v).map(|a| s.listen.push(a)),
        },
    },
    Flag {
        name: "web.systemd-socket",
        shown: "",
        help: "Use systemd socket activation listeners (LISTEN_FDS) instead\n\
               of port listeners.",
        kind: Kind::Switch {
            negatable: true,
            set: |s, on| s.systemd_socket = on,
        },
    },
    Flag {
        name: "web.telemetry-path",
        shown: "=\"/metrics\"",
        help: "Path under which to expose metrics: starts with '/', has no\n\
               '?', '#' or whitespace, and is neither / nor /health.",
        kind: Kind::Value {
            repeatable: false,
            example: "/prom",
            set: |s, v| {
                check_telemetry_path(v)?;
                s.telemetry_path = v.to_owned();
                Ok(())
            },
        },
    },
    Flag {
        name: "web.disable-exporter-metrics",
        shown: "",
        help: "Leave out the exporter's own process_* and promhttp_* metrics.",
        kind: Kind::Switch {
            negatable: true,
            set: |s, on| s.exporter_metrics = !on,
        },
    },
    Flag {
        name: "web.max-requests",
        shown: "=40",
        help: "Metrics requests waiting or in progress beyond this many are\n\
               answered 503 at once (0: no limit).",
        kind: Kind::Value {
            repeatable: false,
            example: "1",
            set: |s, v| parse_count(v, "--web.max-requests").map(|x| s.max_requests = x),
        },
    },
    Flag {
        name: "web.max-connections",
        shown: "=256",
        help: "Client connections held beyond this many are answered 503 and\n\
               closed (0: no limit).",
        kind: Kind::Value {
            repeatable: false,
            example: "1",
            set: |s, v| parse_count(v, "--web.max-connections").map(|x| s.max_connections = x),
        },
    },
    Flag {
        name: "web.idle-timeout",
        shown: "=2m",
        help: "Close a client connection that sends or takes nothing for this\n\
               long, idle keep-alive included (1s to 1h).",
        kind: Kind::Value {
            repeatable: false,
            example: "1h",
            set: |s, v| parse_idle_timeout(v).map(|x| s.idle_timeout = x),
        },
    },
    Flag {
        name: "web.config.file",
        shown: "=\"\"",
        help: "TLS and basic auth: not supported; only empty is accepted.",
        kind: Kind::Value {
            repeatable: false,
            example: "",
            set: |_, v| {
                // Never serve plain HTTP to someone who asked for TLS or basic auth.
                if v.is_empty() {
                    return Ok(());
                }
                Err(usage(
                    "--web.config.file (TLS and basic auth) is not supported yet: remove it to \
                     serve plain HTTP, or put a TLS proxy in front of the exporter",
                ))
            },
        },
    },
    Flag {
        name: "ecs.metadata-uri",
        shown: "=URI",
        help: "Task metadata endpoint base URL (default: the value of\n\
               $ECS_CONTAINER_METADATA_URI_V4), or a directory holding\n\
               task.json and stats.json (instance scope: tasks.json and\n\
               tasks-stats.json), read on every scrape.",
        kind: Kind::Value {
            repeatable: false,
            example: "http://169.254.170.2/v4/x",
            set: |s, v| parse_source_flag(v).map(|x| s.metadata = Some(x)),
        },
    },
    Flag {
        name: "ecs.scope",
        shown: "=task",
        help: "task: the exporter's own task (/task, /task/stats), as a\n\
               sidecar. instance: every task on the instance (/tasks,\n\
               /tasks/stats), as a managed daemon on ECS Managed Instances;\n\
               each task's samples carry its task_arn.",
        kind: Kind::Value {
            repeatable: false,
            example: "instance",
            set: |s, v| one_of(v, "--ecs.scope", Scope::parse, Scope::NAMES).map(|x| s.scope = x),
        },
    },
    Flag {
        name: "ecs.timeout",
        shown: "=3s",
        help: "Deadline for each metadata request, in whole seconds (1s-300s).",
        kind: Kind::Value {
            repeatable: false,
            example: "1m",
            set: |s, v| parse_timeout(v).map(|x| s.timeout = x),
        },
    },
    Flag {
        name: "ecs.min-refresh-interval",
        shown: "=0",
        help: "Scrapes within this long of the last metadata fetch reuse it\n\
               (0 to 300s, like 500ms or 5s; 0: every scrape fetches).",
        kind: Kind::Value {
            repeatable: false,
            example: "5s",
            set: |s, v| parse_refresh_interval(v).map(|x| s.min_refresh_interval = x),
        },
    },
    Flag {
        name: "ecs.containers-exclude",
        shown: "=PATTERN[,PATTERN...] ...",
        help: "No container-level metrics for containers whose name matches\n\
               (`*` matches anything). Task and per-interface network\n\
               metrics stay whole. Repeatable.",
        kind: Kind::Value {
            repeatable: true,
            example: "ecs-*,init",
            set: |s, v| {
                s.collect.exclude.extend(patterns(v));
                Ok(())
            },
        },
    },
    Flag {
        name: "ecs.container-labels",
        shown: "=PATTERN[,PATTERN...] ...",
        help: "Write the container labels whose key matches (`*` matches\n\
               anything) on ecs_container_labels, one label_KEY label each\n\
               (characters other than letters, digits and _ become _).\n\
               Repeatable. None by default.",
        kind: Kind::Value {
            repeatable: true,
            example: "com.amazonaws.ecs.*,team",
            set: |s, v| {
                s.collect.labels.extend(patterns(v));
                Ok(())
            },
        },
    },
    Flag {
        name: "log.level",
        shown: "=info",
        help: "Only log messages of this severity or above: debug, info,\n\
               warn, error.",
        kind: Kind::Value {
            repeatable: false,
            example: "warn",
            set: |s, v| {
                one_of(v, "--log.level", Level::parse, Level::NAMES).map(|l| s.logger.level = l)
            },
        },
    },
    Flag {
        name: "log.format",
        shown: "=logfmt",
        help: "Log format on stderr: logfmt, json.",
        kind: Kind::Value {
            repeatable: false,
            example: "json",
            set: |s, v| {
                one_of(v, "--log.format", Format::parse, Format::NAMES).map(|f| s.logger.format = f)
            },
        },
    },
];

/// The column where help texts start.
const HELP_COLUMN: usize = 33;

/// `--help`: the flags of [`FLAGS`], then the collector groups' switches.
pub fn help() -> String {
    let mut out = String::from(USAGE);
    out.push_str("\nFlags:\n");
    for flag in FLAGS {
        let negatable = matches!(
            flag.kind,
            Kind::Switch {
                negatable: true,
                ..
            }
        );
        let short = if flag.name == "help" { "-h, " } else { "    " };
        let no = if negatable { "[no-]" } else { "" };
        help_entry(
            &mut out,
            &format!("  {short}--{no}{}{}", flag.name, flag.shown),
            flag.help,
        );
    }
    out.push_str(
        "\nCollector groups, on unless said otherwise; with all of them off, the Go exporter's\n\
         families remain, with ecs_up and ecs_exporter_build_info:\n",
    );
    for switch in GROUPS.iter().filter_map(|g| g.switch.as_ref()) {
        let entry = format!("      --[no-]collector.{}", switch.name);
        let off = if switch.default {
            ""
        } else {
            "\nOff by default."
        };
        help_entry(&mut out, &entry, &format!("{}{off}", switch.help));
    }
    out
}

/// One flag's lines: the flag, then its help from [`HELP_COLUMN`] (on the next line if the
/// flag is too long to leave a space before it).
fn help_entry(out: &mut String, flag: &str, help: &str) {
    out.push_str(flag);
    let mut column = flag.len();
    if column + 1 > HELP_COLUMN {
        out.push('\n');
        column = 0;
    }
    for (i, line) in help.lines().enumerate() {
        if i > 0 {
            out.push('\n');
            column = 0;
        }
        out.extend(std::iter::repeat_n(' ', HELP_COLUMN - column));
        out.push_str(line.trim_start());
    }
    out.push('\n');
}

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
    /// Which documents a scrape reads: the exporter's task's, or every task's on the instance.
    pub scope: Scope,
    pub timeout: Duration,
    /// Scrapes within this long of the last metadata fetch reuse it (0: every scrape fetches).
    pub min_refresh_interval: Duration,
    pub logger: Logger,
    pub collect: Options,
}

/// What the flags have set so far; the defaults are the Go exporter's, and ours.
pub struct Settings {
    listen: Vec<ListenAddress>,
    systemd_socket: bool,
    max_requests: usize,
    max_connections: usize,
    idle_timeout: Duration,
    telemetry_path: String,
    exporter_metrics: bool,
    metadata: Option<Source>,
    scope: Scope,
    timeout: Duration,
    min_refresh_interval: Duration,
    logger: Logger,
    collect: Options,
    health_check: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: Vec::new(),
            systemd_socket: false,
            max_requests: 40,
            max_connections: 256,
            idle_timeout: Duration::from_secs(120),
            telemetry_path: "/metrics".to_owned(),
            exporter_metrics: true,
            metadata: None,
            scope: Scope::Task,
            timeout: Duration::from_secs(3),
            min_refresh_interval: Duration::ZERO,
            logger: Logger {
                level: Level::Info,
                format: Format::Logfmt,
            },
            collect: Options::default(),
            health_check: false,
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

    let mut settings = Settings::default();
    // Flags given so far; every flag but a repeatable one given twice (in either of its
    // `--x`/`--no-x` spellings) is a usage error, as in the Go exporter's kingpin.
    let mut seen: Vec<String> = Vec::new();
    // `--help` or `--version`: answered once every argument has parsed, so that a wrong flag
    // beside them is still an error.
    let mut now: Option<Command> = None;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(describe)? {
        let long = match &arg {
            Short('h') => {
                now.get_or_insert(Command::Help);
                continue;
            }
            Long(long) => (*long).to_owned(),
            _ => return Err(describe(arg.unexpected())),
        };
        let (name, on) = match long.strip_prefix("no-") {
            Some(name) => (name, false),
            None => (long.as_str(), true),
        };
        let flag = FLAGS.iter().find(|f| f.name == name);
        let repeatable = matches!(
            flag.map(|f| &f.kind),
            Some(Kind::Value {
                repeatable: true,
                ..
            })
        );
        match flag.map(|f| &f.kind) {
            Some(Kind::Now(command)) if on => {
                now.get_or_insert_with(command);
                continue;
            }
            Some(Kind::Switch { negatable, set }) if on || *negatable => set(&mut settings, on),
            Some(Kind::Value { set, .. }) if on => {
                let value = parser.value().map_err(describe)?;
                let value = value
                    .into_string()
                    .map_err(|v| usage(format!("--{name} {v:?}: not valid UTF-8")))?;
                set(&mut settings, &value)?;
            }
            None if name
                .strip_prefix("collector.")
                .is_some_and(|group| settings.collect.set(group, on)) => {}
            _ => return Err(describe(arg.unexpected())),
        }
        if !repeatable {
            if seen.iter().any(|s| s == name) {
                return Err(usage(format!("flag '{name}' cannot be repeated")));
            }
            seen.push(name.to_owned());
        }
    }
    match now {
        Some(command) => Ok(command),
        None => settings.finish(env_uri),
    }
}

impl Settings {
    fn finish(mut self, env_uri: Option<OsString>) -> Result<Command, CliError> {
        if self.listen.is_empty() {
            self.listen.push(ListenAddress {
                host: String::new(),
                port: 9779,
            });
        }
        if self.health_check {
            // The check only needs the address; it runs where the metadata variable may be unset.
            return Ok(Command::HealthCheck(self.listen.swap_remove(0)));
        }
        let metadata = match self.metadata {
            Some(source) => source,
            None => {
                source_from_env(env_uri).map_err(|msg| CliError::NoMetadata(self.logger, msg))?
            }
        };
        Ok(Command::Run(Config {
            listen: self.listen,
            systemd_socket: self.systemd_socket,
            max_requests: self.max_requests,
            max_connections: self.max_connections,
            idle_timeout: self.idle_timeout,
            telemetry_path: self.telemetry_path,
            exporter_metrics: self.exporter_metrics,
            metadata,
            scope: self.scope,
            timeout: self.timeout,
            min_refresh_interval: self.min_refresh_interval,
            logger: self.logger,
            collect: self.collect,
        }))
    }
}

/// One of a few words, as `parse` reads them.
fn one_of<T>(
    value: &str,
    flag: &str,
    parse: fn(&str) -> Option<T>,
    names: &str,
) -> Result<T, CliError> {
    parse(value).ok_or_else(|| usage(format!("{flag} {value:?}: must be one of {names}")))
}

/// A whole number of requests or connections; 0 is no limit.
fn parse_count(value: &str, flag: &str) -> Result<usize, CliError> {
    value.parse().map_err(|_| {
        usage(format!(
            "{flag} {value:?}: expected a whole number (0: no limit)"
        ))
    })
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

/// The patterns of a comma-separated pattern flag (`--ecs.containers-exclude`,
/// `--ecs.container-labels`), empty ones dropped.
fn patterns(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
}

/// `500ms`, `3s`, `1m`, `1h` or `0`: the units of every duration flag.
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
        // As Go's time.ParseDuration: a number needs a unit, but for 0.
        return (value == "0").then_some(Duration::ZERO);
    };
    let n: u64 = number.parse().ok()?;
    Some(Duration::from_millis(n.checked_mul(millis_per_unit)?))
}

/// Whole seconds from 1 s to 1 h.
fn parse_idle_timeout(value: &str) -> Result<Duration, CliError> {
    parse_duration(value)
        .filter(|d| (1..=3600).contains(&d.as_secs()) && d.subsec_nanos() == 0)
        .ok_or_else(|| {
            usage(format!(
                "--web.idle-timeout {value:?}: expected whole seconds from 1s to 1h, like 30s or 2m"
            ))
        })
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
        let mut want = Options::default();
        for off in ["memory", "storage", "container", "pids"] {
            want.set(off, false);
        }
        want.exclude = vec!["ecs-*".into(), "init".into(), "*~pause".into()];
        assert_eq!(c.collect, want);
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
        assert_eq!(run(&["--help", "--version", "-h"], None), Ok(Command::Help));
        for args in [
            &["--version", "--bogus"][..],
            &["--bogus", "-h"],
            &["--help", "x"],
        ] {
            assert_eq!(
                run(args, None).map_err(|e| e.exit_code()),
                Err(2),
                "{args:?}"
            );
        }
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
                &["--ecs.timeout=3"],
                "2 --ecs.timeout \"3\": expected whole seconds from 1s to 300s, like 3s or 1m",
            ),
            (
                &["--ecs.min-refresh-interval=5"],
                "2 --ecs.min-refresh-interval \"5\": expected a duration from 0 to 300s, like 0, 500ms or 5s",
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

    /// Every spelling of every flag of the tables, with a value where it takes one.
    fn every_flag() -> Vec<String> {
        let mut args = Vec::new();
        for flag in FLAGS {
            match &flag.kind {
                Kind::Now(_) => {}
                Kind::Switch { negatable, .. } => {
                    args.push(format!("--{}", flag.name));
                    if *negatable {
                        args.push(format!("--no-{}", flag.name));
                    }
                }
                Kind::Value { example, .. } => args.push(format!("--{}={example}", flag.name)),
            }
        }
        for switch in GROUPS.iter().filter_map(|g| g.switch.as_ref()) {
            args.push(format!("--collector.{}", switch.name));
            args.push(format!("--no-collector.{}", switch.name));
        }
        args
    }

    /// A help text starts in one column, on the flag's line if there is room for a space before
    /// it, else on the next; its further lines start in the same column. `-h` is shown for
    /// `--help` only.
    #[test]
    fn help_entries_start_in_one_column() {
        let entry = |flag: &str, text: &str| {
            let mut out = String::new();
            help_entry(&mut out, flag, text);
            out
        };
        let column = " ".repeat(HELP_COLUMN);
        let x = |n: usize| "x".repeat(n);
        assert_eq!(entry(&x(31), "a\nb"), format!("{}  a\n{column}b\n", x(31)));
        assert_eq!(entry(&x(32), "a"), format!("{} a\n", x(32)));
        assert_eq!(entry(&x(33), "a"), format!("{}\n{column}a\n", x(33)));
        let help = help();
        assert!(help.contains("\n  -h, --help                     Show this help and exit.\n"));
        assert!(help.contains("\n      --version                  Show the version and exit.\n"));
        assert_eq!(help.matches("-h, ").count(), 1);
    }

    /// Every flag of the tables parses with its example value and shows in `--help` (which the
    /// parser and the help both read, so no flag can be in one and not the other).
    #[test]
    fn every_flag_of_the_tables_parses_and_is_in_the_help() {
        let help = help();
        for arg in every_flag() {
            assert!(run(&[&arg], ENV).is_ok(), "{arg} does not parse");
            let name = arg.split('=').next().unwrap_or(&arg);
            let shown = name.replacen("--no-", "--[no-]", 1);
            let shown = if shown.starts_with("--[no-]") {
                shown
            } else if help.contains(&format!("--[no-]{}", &name[2..])) {
                format!("--[no-]{}", &name[2..])
            } else {
                name.to_owned()
            };
            assert!(help.contains(&shown), "{name} is not in --help");
        }
        assert!(every_flag().len() > 25);
        for (args, want) in [
            (&["--help"][..], Command::Help),
            (&["--version"], Command::Version),
        ] {
            assert_eq!(run(args, None), Ok(want));
        }
        // Every line of the help fits in 100 columns.
        for line in help.lines() {
            assert!(line.len() <= 100, "{line}");
        }
    }
}
