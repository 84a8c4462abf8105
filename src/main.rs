//! The `ecs_exporter` binary: acts on what the command line asked for and reports a startup
//! error once. The pipeline lives in the library (`lib.rs`).
//!
//! Exit statuses: 0 after `--help`, `--version`, a healthy `--health-check` or SIGTERM/SIGINT;
//! 2 for a usage error (one plain line on stderr); 1 for a start-up failure (one log line in
//! the chosen format, as Go's "Error starting server") or an unhealthy `--health-check`.

use std::process::ExitCode;

use ecs_exporter::log::Logger;
use ecs_exporter::{Server, cli, collect, healthcheck, log, tmds, version};

fn main() -> ExitCode {
    let args = std::env::args_os().skip(1);
    let command = match cli::parse(args, std::env::var_os(cli::METADATA_ENV)) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("ecs_exporter: error: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match command {
        cli::Command::Help => {
            print!("{}", cli::help());
            return ExitCode::SUCCESS;
        }
        cli::Command::Version => {
            print!("{}", version::text());
            return ExitCode::SUCCESS;
        }
        cli::Command::HealthCheck(listen) => {
            return match healthcheck::check(&listen) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(line) => {
                    println!("{line}");
                    ExitCode::FAILURE
                }
            };
        }
        cli::Command::NoEndpoint { logger, reason } => {
            // Go's own words for this failure.
            log!(logger, Error, "Error creating client", "error" = &reason);
            return ExitCode::FAILURE;
        }
        cli::Command::Run(config) => config,
    };
    let logger = config.logger;
    for (kept, lost) in collect::colliding_label_patterns(&config.collect.labels) {
        log!(
            logger,
            Warn,
            "two --ecs.container-labels keys have one label name: only the first in byte order is written",
            "kept" = kept,
            "left_out" = lost
        );
    }
    if !config.collect.labels.is_empty() && !config.collect.is_on(collect::LABELS_GROUP) {
        log!(
            logger,
            Warn,
            "--ecs.container-labels has no effect: group container_labels is off"
        );
    }
    if let tmds::Source::Dir(dir) = &config.metadata {
        let (tasks, stats) = config.scope.endpoints();
        let problem = match std::fs::metadata(dir) {
            // Without a scheme a URL reads as a relative path: say how to give the endpoint.
            Err(e) => {
                // Without a scheme a URL reads as a relative path: say how to give the endpoint.
                let hint = match e.kind() {
                    std::io::ErrorKind::NotFound => " (for the endpoint, give an http:// URL)",
                    _ => "",
                };
                Some(format!("--ecs.metadata-uri {}: {e}{hint}", dir.display()))
            }
            Ok(m) if !m.is_dir() => Some(format!(
                "--ecs.metadata-uri {}: not a directory (give the directory that holds {} and {})",
                dir.display(),
                tasks.file(),
                stats.file()
            )),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            return start_failure(logger, &problem);
        }
        for file in [tasks.file(), stats.file()] {
            let path = dir.join(file);
            if !path.is_file() {
                let missing = match config.scope {
                    // As the HTTP case's warning does, say what instance scope reads.
                    tmds::Scope::Instance => {
                        "metadata file missing: scrapes will report ecs_up 0 until it exists \
                         (--ecs.scope=instance reads what /tasks and /tasks/stats serve; for a \
                         task's task.json and stats.json, run with --ecs.scope=task)"
                    }
                    tmds::Scope::Task => {
                        "metadata file missing: scrapes will report ecs_up 0 until it exists"
                    }
                };
                log!(logger, Warn, missing, "file" = &path.display());
            }
        }
    }
    // Before any thread starts (tiny_http starts some), so that every thread inherits the mask.
    let termination = match ecs_exporter::block_termination() {
        Ok(t) => t,
        Err(e) => return start_failure(logger, &format!("cannot block SIGTERM and SIGINT: {e}")),
    };
    // Each client connection holds a descriptor until the client closes it; as Go's runtime
    // does, use all the descriptors the hard limit allows rather than the often small soft one.
    let mut config = config;
    match ecs_exporter::raise_fd_limit() {
        Ok(limit) => {
            let fitting = ecs_exporter::connections_within(config.max_connections, limit);
            if fitting != config.max_connections {
                log!(
                    logger,
                    Warn,
                    "fewer client connections than --web.max-connections fit the open files limit: the cap is lowered, so that room is made before descriptors run out",
                    "max_connections" = fitting as u64,
                    "open_files_limit" = limit
                );
                config.max_connections = fitting;
            }
        }
        Err(e) => log!(
            logger,
            Warn,
            "cannot raise the open files limit",
            "error" = &e
        ),
    }
    let server = match Server::bind(config) {
        Ok(server) => server,
        Err(e) => return start_failure(logger, &e),
    };
    let shutdown = server.shutdown_handle();
    let waiter = ecs_exporter::spawn_waiter(termination, move |signal| {
        log!(logger, Info, "shutting down", "signal" = signal);
        shutdown.shutdown();
    });
    if let Err(e) = waiter {
        return start_failure(logger, &format!("cannot start the signal thread: {e}"));
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => start_failure(logger, &e),
    }
}

/// One log line in the chosen format, as Go's `msg="Error starting server" err=...`, and exit 1.
fn start_failure(logger: Logger, error: &dyn std::fmt::Display) -> ExitCode {
    log!(
        logger,
        Error,
        "Error starting server",
        "err" = log::Value::Text(error)
    );
    ExitCode::FAILURE
}
