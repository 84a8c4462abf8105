//! The `ecs_exporter` binary: acts on what the command line asked for and reports a startup
//! error once. The pipeline lives in the library (`lib.rs`).

use std::process::ExitCode;

use ecs_exporter::{cli, healthcheck, log, server, sys, tmds, version};

fn main() -> ExitCode {
    let args = std::env::args_os().skip(1);
    let command = match cli::parse(args, std::env::var_os(cli::METADATA_ENV)) {
        Ok(command) => command,
        Err(e) => return fail(&e, e.exit_code()),
    };
    let config = match command {
        cli::Command::Help => {
            print!("{}", cli::HELP);
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
        cli::Command::Run(config) => config,
    };
    if let tmds::Source::Dir(dir) = &config.metadata
        && !dir.is_dir()
    {
        let msg = format!("--ecs.metadata-uri {}: no such directory", dir.display());
        return fail(&msg, 2);
    }
    // Before any thread starts (tiny_http starts some), so that every thread inherits the mask.
    let termination = match sys::block_termination() {
        Ok(t) => t,
        Err(e) => return fail(&format!("cannot block SIGTERM and SIGINT: {e}"), 1),
    };
    let logger = config.logger;
    // Each client connection holds a descriptor until the client closes it; as Go's runtime
    // does, use all the descriptors the hard limit allows rather than the often small soft one.
    if let Err(e) = sys::raise_fd_limit() {
        logger.log(
            log::Level::Warn,
            "cannot raise the open files limit",
            &[("error", &e)],
        );
    }
    let server = match server::Server::bind(config) {
        Ok(server) => server,
        Err(e) => return fail(&e, 1),
    };
    let shutdown = server.shutdown_handle();
    let waiter = sys::spawn_waiter(termination, move |signal| {
        logger.log(log::Level::Info, "shutting down", &[("signal", &signal)]);
        shutdown.shutdown();
    });
    if let Err(e) = waiter {
        return fail(&format!("cannot start the signal thread: {e}"), 1);
    }
    server.run();
    ExitCode::SUCCESS
}

fn fail(error: &dyn std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("ecs_exporter: error: {error}");
    ExitCode::from(code)
}
