//! ecs_exporter: a Prometheus exporter for Amazon ECS, a drop-in replacement for
//! prometheus-community/ecs_exporter v0.4.0.
//!
//! Data flows one way: args -> config (`cli`) -> per request: fetch (`tmds`) -> decode (`model`)
//! -> collect (`collect`) -> write (`exposition`) -> respond (`server`). `main` only acts on
//! what the command line asked for and reports a startup error once.

mod cli;
mod collect;
mod exposition;
mod healthcheck;
mod log;
mod model;
mod process;
mod rfc3339;
mod server;
mod signals;
mod tmds;
mod version;

use std::process::ExitCode;

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
    let termination = match signals::block() {
        Ok(t) => t,
        Err(e) => return fail(&format!("cannot block SIGTERM and SIGINT: {e}"), 1),
    };
    let logger = config.logger;
    let server = match server::Server::bind(config) {
        Ok(server) => server,
        Err(e) => return fail(&e, 1),
    };
    let shutdown = server.shutdown_handle();
    let waiter = signals::spawn_waiter(termination, move |signal| {
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
