//! The flags: Go ecs_exporter v0.4.0's, with its names and defaults, and ours. Every flag is a
//! row of [`FLAGS`]: its name, how `--help` shows it, its help text and how its value parses
//! into the [`Config`]; the collector groups' `--[no-]collector.NAME` come from
//! `collect::GROUPS`. The parse loop (`cli`) and `--help` both read these tables, so neither
//! can list a flag the other does not.

use std::path::PathBuf;
use std::time::Duration;

use super::{CliError, Command, usage};
use crate::collect::GROUPS;
use crate::config::{Config, ListenAddress};
use crate::log::{Format, Level};
use crate::tmds::url::{parse_url, redacted};
use crate::tmds::{Scope, Source};

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
    /// Prints something instead of running (`--help`, `--version`); the first given wins.
    Print(fn() -> Command),
    /// No value; `--no-NAME` too if `negatable`.
    Switch {
        negatable: bool,
        set: fn(&mut Config, bool),
    },
    /// A value, once or, if `repeatable`, any number of times.
    Value {
        repeatable: bool,
        /// A value the flag takes, for the tests.
        example: &'static str,
        set: fn(&mut Config, &str) -> Result<(), CliError>,
    },
}

/// Every flag, in the order of `--help`.
pub static FLAGS: &[Flag] = &[
    Flag {
        name: "help",
        shown: "",
        help: "Show this help and exit.",
        kind: Kind::Print(|| Command::Help),
    },
    Flag {
        name: "version",
        shown: "",
        help: "Show the version and exit.",
        kind: Kind::Print(|| Command::Version),
    },
    Flag {
        name: "health-check",
        shown: "",
        help: "GET /health on the (first) listen address, print one line, and\n\
               exit 0 if it answered 200, else 1 (for ECS healthCheck).",
        kind: Kind::Switch {
            negatable: false,
            // `cli` answers it once the flags are read.
            set: |_, _| {},
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
        help: "Client connections held at once: a new one at the cap closes the\n\
               one idle longest, else the slowest sender or reader; when every\n\
               one is owed an answer, it gets 503 (0: no limit).",
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
            set: |s, v| parse_source_flag(v).map(|x| s.metadata = x),
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
    Flag {
        name: "collector.disable-defaults",
        shown: "",
        help: "Every collector group off but those given with\n\
               --collector.NAME (node_exporter's flag).",
        kind: Kind::Switch {
            negatable: false,
            // `cli` applies it once every --[no-]collector.NAME is read, whatever the order.
            set: |_, _| {},
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

/// `--web.listen-address`'s `host:port`.
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

/// `--ecs.metadata-uri`'s URL or directory.
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
}
