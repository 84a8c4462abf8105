//! Test harness: the one fake metadata endpoint (`endpoint`), the real binary started against
//! it (`exporter`), and a strict parser of the exposition text (`exposition`), so that every
//! output a test sees is checked for validity.
#![allow(dead_code, unused_imports)] // Each test file uses a different part of this module.

mod endpoint;
mod exporter;
mod exposition;
pub mod go;
pub mod instance;
pub mod prometheus;
pub mod raw;
mod rng;
mod time;

pub use endpoint::{Behaviour, CHUNKING_THRESHOLD, Endpoint, body_of, framed};
pub use exporter::*;
pub use exposition::*;
pub use rng::Rng;
pub use time::{bound, ms, scale, wait_for, wait_until};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A number from the environment variable `name` (for benchmark and fuzzer sizes), or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `fixtures/<case>` as a string, for `--ecs.metadata-uri`.
pub fn fixture(case: &str) -> String {
    project_dir()
        .join("fixtures")
        .join(case)
        .to_str()
        .expect("UTF-8 path")
        .to_owned()
}

/// `../shared`, or where `ECS_EXPORTER_SHARED` says it is (for a copy of the tree elsewhere,
/// as cargo-mutants makes).
fn shared_path() -> PathBuf {
    match std::env::var_os("ECS_EXPORTER_SHARED") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => project_dir().join("../shared"),
    }
}

/// `../shared`, for a test that `#[cfg_attr(no_shared, ignore = ...)]` leaves out when it is
/// absent (src/build.rs): reaching here without it is a failure (CI, or a stale build probe).
pub fn shared_dir() -> PathBuf {
    let dir = shared_path();
    assert!(
        dir.is_dir(),
        "../shared is not beside the project: CI must provide it (or set ECS_EXPORTER_SKIP_SHARED=1); \
         if you removed it, `touch src/build.rs` so that these tests show as ignored"
    );
    dir
}

/// `../shared`, if present and not switched off, for tests that use it only when they can
/// (extra fuzz seeds, benchmark inputs).
pub fn shared_dir_if_present() -> Option<PathBuf> {
    let dir = shared_path();
    let off = std::env::var_os("ECS_EXPORTER_SKIP_SHARED").is_some_and(|v| v == "1");
    (dir.is_dir() && !off).then_some(dir)
}

/// A directory of its own under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("ecs_exporter-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// Writes `task.json` and `stats.json`.
    pub fn documents(&self, task: &str, stats: &str) -> &Path {
        std::fs::write(self.0.join("task.json"), task).expect("write task.json");
        std::fs::write(self.0.join("stats.json"), stats).expect("write stats.json");
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
