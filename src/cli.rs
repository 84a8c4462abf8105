//! Command-line parsing: one lexopt loop over the flags of [`FLAGS`] (`cli/flags.rs`, with
//! `--help`), filling in a [`Config`].
//!
//! Parsing is pure: it takes the arguments and the metadata variable's value and returns what to
//! do, or an error saying what is wrong. It never prints or exits; `main` does that once.

mod flags;

use std::ffi::OsString;
use std::fmt;

pub use flags::{FLAGS, Flag, Kind, help};

use crate::collect::Switch;
use crate::config::{Config, ListenAddress};
use crate::log::Logger;
use crate::tmds::url::source_from_env;

pub use crate::tmds::url::METADATA_ENV;

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Config),
    /// Check the health of a server listening on this address.
    HealthCheck(ListenAddress),
    /// No usable metadata endpoint is known: log Go's start-up failure ("Error creating
    /// client") with this reason, in the format the flags chose, and exit 1 as Go does.
    NoEndpoint {
        logger: Logger,
        reason: String,
    },
    Help,
    Version,
}

/// A flag or value is wrong (exit status 2): one line that names it and says what to do.
#[derive(Debug, PartialEq, Eq)]
pub struct CliError(String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

fn usage(msg: impl Into<String>) -> CliError {
    CliError(msg.into())
}

/// Parses the arguments (without the program name). `env_uri` is the value of
/// `ECS_CONTAINER_METADATA_URI_V4`, if set.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env_uri: Option<OsString>,
) -> Result<Command, CliError> {
    use lexopt::prelude::*;

    let mut config = Config {
        // The default address is for when none is given; a given one replaces it.
        listen: Vec::new(),
        ..Config::default()
    };
    // Flags given so far; every flag but a repeatable one given twice (in either of its
    // `--x`/`--no-x` spellings) is a usage error, as in the Go exporter's kingpin.
    let mut seen: Vec<String> = Vec::new();
    // `--help` or `--version`: answered once every argument has parsed, so that a wrong flag
    // beside them is still an error.
    let mut print: Option<Command> = None;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(describe)? {
        let long = match &arg {
            Short('h') => {
                print.get_or_insert(Command::Help);
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
            Some(Kind::Print(command)) if on => {
                print.get_or_insert_with(command);
                continue;
            }
            Some(Kind::Switch { negatable, set }) if on || *negatable => set(&mut config, on),
            Some(Kind::Value { set, .. }) if on => {
                let value = parser.value().map_err(describe)?;
                let value = value.into_string().map_err(|v| {
                    usage(format!(
                        "--{name} {:?}: not valid UTF-8",
                        v.to_string_lossy()
                    ))
                })?;
                set(&mut config, &value)?;
            }
            None if name
                .strip_prefix("collector.")
                .is_some_and(|group| config.collect.set(group, on)) => {}
            _ => return Err(describe(arg.unexpected())),
        }
        if !repeatable {
            if seen.iter().any(|s| s == name) {
                return Err(usage(format!("flag '{name}' cannot be repeated")));
            }
            seen.push(name.to_owned());
        }
    }
    if let Some(command) = print {
        return Ok(command);
    }
    if config.listen.is_empty() {
        config.listen.push(ListenAddress::DEFAULT);
    }
    let given = |flag: &str| seen.iter().any(|s| s == flag);
    if given("collector.disable-defaults") {
        // As node_exporter: the groups not named on the command line are off.
        let named = |switch: &Switch| {
            seen.iter()
                .any(|flag| flag.strip_prefix("collector.") == Some(switch.name))
        };
        config.collect.turn_off_unless(named);
    }
    if given("health-check") {
        // The check only needs the address; it runs where the metadata variable may be unset.
        return Ok(Command::HealthCheck(config.listen.swap_remove(0)));
    }
    if !given("ecs.metadata-uri") {
        match source_from_env(env_uri) {
            Ok(source) => config.metadata = source,
            Err(reason) => {
                let logger = config.logger;
                return Ok(Command::NoEndpoint { logger, reason });
            }
        }
    }
    Ok(Command::Run(config))
}

/// Turns lexopt's errors into one line that names the flag and says what to do.
fn describe(e: lexopt::Error) -> CliError {
    use lexopt::Error as E;
    // One `format!` for the three shapes of "what, then the flag, then why": each costs code.
    let (before, flag, after) = match e {
        E::UnexpectedOption(flag) => ("unknown flag '", flag, "' (see --help for the flags)"),
        E::UnexpectedArgument(arg) => {
            return usage(format!(
                "unexpected argument {arg:?}: ecs_exporter takes only flags (see --help)"
            ));
        }
        E::MissingValue { option: Some(flag) } => ("", flag, " needs a value"),
        E::UnexpectedValue { option, .. } => ("", option, " takes no value"),
        // Not returned by the calls made here (a value is only asked for after an option,
        // strings are never parsed by lexopt); a line of our own keeps lexopt's messages, and
        // their code, out of the binary.
        _ => (
            "the command line could not be read",
            String::new(),
            " (see --help)",
        ),
    };
    usage(format!("{before}{flag}{after}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{GROUPS, Options};
    use crate::log::{Format, Level, Logger};
    use crate::tmds::Source;
    use std::time::Duration;

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

    /// The exit status and the line a wrong command line ends with.
    fn error(args: &[&str], env: Option<&str>) -> String {
        match run(args, env) {
            Err(e) => format!("2 {e}"),
            Ok(Command::NoEndpoint { reason, .. }) => format!("1 {reason}"),
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

    /// node_exporter's `--collector.disable-defaults`: every group off but those named with
    /// `--collector.NAME`, before or after it; `--no-collector.NAME` stays off.
    #[test]
    fn disable_defaults_leaves_on_only_the_groups_named() {
        let switches = || GROUPS.iter().filter_map(|g| g.switch.as_ref());
        let (first, second) = {
            let mut names = switches().map(|s| s.name);
            (names.next().unwrap_or(""), names.next().unwrap_or(""))
        };
        let on = format!("--collector.{first}");
        let off = format!("--no-collector.{second}");
        for args in [
            vec!["--collector.disable-defaults", &on, &off],
            vec![&on, &off, "--collector.disable-defaults"],
        ] {
            let c = config(&args);
            for switch in switches() {
                assert_eq!(
                    c.collect.is_on(switch.name),
                    switch.name == first,
                    "{args:?}"
                );
            }
        }
        assert_eq!(
            config(&["--collector.disable-defaults"]).collect,
            Options::with(|_| false)
        );
        assert!(run(&["--no-collector.disable-defaults"], ENV).is_err());
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
            assert!(run(args, None).is_err(), "{args:?}");
        }
        assert_eq!(
            run(&["--health-check", "--web.listen-address=:9000"], None),
            Ok(Command::HealthCheck(ListenAddress {
                host: String::new(),
                port: 9000
            }))
        );
        assert!(run(&["--health-check", "--web.listen-address=oops"], None).is_err());
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
        assert!(error(&[], Some("169.254.170.2/v4")).starts_with(
            "1 ECS_CONTAINER_METADATA_URI_V4 is \"169.254.170.2/v4\", not an http:// URL"
        ));
        let c = match run(&["--ecs.metadata-uri=fixtures/ec2"], Some("http://ignored")) {
            Ok(Command::Run(c)) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            c.metadata,
            Source::Dir("fixtures/ec2".into()),
            "the flag overrides the variable"
        );
        // The health check needs no endpoint.
        assert!(matches!(
            run(&["--health-check"], None),
            Ok(Command::HealthCheck(_))
        ));
    }

    /// Every spelling of every flag of the tables, with a value where it takes one.
    fn every_flag() -> Vec<String> {
        let mut args = Vec::new();
        for flag in FLAGS {
            match &flag.kind {
                Kind::Print(_) => {}
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
