//! Time in the tests, in one place. A bound a test holds the exporter to ("answered within
//! 100 ms") is written as it holds on a native machine and scaled here for emulation, where the
//! exporter and the test both run several times slower and threads start late. A test waits
//! for an event (a line in the log, a request at the fake endpoint, a closed connection) by
//! polling it up to such a bound, never by sleeping a fixed time and hoping.

use std::time::{Duration, Instant};

/// How many times slower than native the tests run: `ECS_EXPORTER_TEST_TIME_SCALE` if set (a
/// loaded machine), else 10 under an emulator (`ECS_EXPORTER_TEST_RUNNER`, as `.ci/run` sets
/// it for aarch64), else 1.
pub fn scale() -> u32 {
    let set = std::env::var("ECS_EXPORTER_TEST_TIME_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s: &u32| s > 0);
    set.unwrap_or(if super::emulated() { 10 } else { 1 })
}

/// `native`, a bound that holds on a native machine, scaled for this run.
pub fn bound(native: Duration) -> Duration {
    native * scale()
}

/// [`bound`] of so many milliseconds.
pub fn ms(native: u64) -> Duration {
    bound(Duration::from_millis(native))
}

/// Polls `check` until it gives a value, for up to `within` (already a bound: see [`ms`]); the
/// test fails naming `what` if it never does.
pub fn wait_for<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// [`wait_for`] a condition.
pub fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    wait_for(what, within, || check().then_some(()))
}
