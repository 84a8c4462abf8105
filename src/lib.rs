//! ecs_exporter: a Prometheus exporter for Amazon ECS, a drop-in replacement for
//! prometheus-community/ecs_exporter v0.4.0.
//!
//! Data flows one way: args -> config (`cli`) -> per request: fetch (`tmds`) -> decode (`model`)
//! -> collect (`collect`) -> write (`exposition`), one scrape in `scrape`, and respond (`server`). The library exists so
//! that tests, the fuzzer and the benchmarks can drive the pure middle of that pipeline without
//! sockets; the binary in `main.rs` only acts on what the command line asked for.

pub mod cli;
pub mod collect;
pub mod exposition;
pub mod front;
pub mod gzip;
pub mod healthcheck;
pub mod log;
pub mod model;
pub mod order;
pub mod process;
pub mod rfc3339;
pub mod scrape;
pub mod server;
pub mod sys;
pub mod tmds;
pub mod version;
