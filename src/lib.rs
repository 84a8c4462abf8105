//! ecs_exporter: a Prometheus exporter for Amazon ECS, a drop-in replacement for
//! prometheus-community/ecs_exporter v0.4.0.
//!
//! Data flows one way: args (`cli`) -> config (`config`) -> per request: fetch (`tmds`) -> decode (`model`)
//! -> collect (`collect`) -> write (`exposition`), one scrape in `scrape`, and respond (`server`). The library exists so
//! that tests, the fuzzer and the benchmarks can drive the pure middle of that pipeline without
//! sockets; the binary in `main.rs` only acts on what the command line asked for.

// The surface, kept small on purpose (as miniserde and lexopt keep theirs): what the binary
// acts on (`main.rs`), and what the tests, the benchmarks and the fuzzer drive without sockets
// (the tables the help and the docs are checked against, and the pure pipeline: decode ->
// collect -> write). Everything else is the crate's own.
pub mod cli;
pub mod collect;
pub mod config;
pub mod exposition;
pub mod gzip;
pub mod healthcheck;
pub mod log;
pub mod process;
pub mod scrape;
pub mod tmds;
pub mod version;

pub use server::{Server, Shutdown, StartError, connections_within};
pub use sys::{block_termination, raise_fd_limit, spawn_waiter};

mod model;
mod order;
mod rfc3339;
mod server;
mod sys;
