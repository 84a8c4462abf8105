//! The Go exporter v0.4.0 in `../shared/reference/`, run beside ours: on `:0`, found by the
//! address it logs, as the exporter is (tests/common/exporter.rs).

use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const GO: &str = "reference/ecs_exporter-v0.4.0-linux-amd64";

/// The Go binary, for tests that `#[cfg_attr(no_go_reference, ignore = ...)]` leaves out where
/// it cannot run (src/build.rs).
pub fn go_binary() -> PathBuf {
    let go = super::shared_dir().join(GO);
    assert!(go.is_file(), "{} is missing", go.display());
    go
}

/// The Go binary where it can run here (present, and this is amd64), for tests that compare
/// with it when they can.
pub fn go_binary_if_runnable() -> Option<PathBuf> {
    let go = super::shared_dir_if_present()?.join(GO);
    (go.is_file() && std::env::consts::ARCH == "x86_64").then_some(go)
}

/// A running Go exporter, and what it logged before it listened.
pub struct Go {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub first_lines: Vec<String>,
}

impl Go {
    /// `binary` with `args`, its metadata endpoint `metadata`.
    pub fn start(binary: &PathBuf, metadata: &str, args: &[&str]) -> Go {
        let mut child = Command::new(binary)
            .arg("--web.listen-address=127.0.0.1:0")
            .args(args)
            .env("ECS_CONTAINER_METADATA_URI_V4", metadata)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the Go exporter starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
        // Its first two lines: "Listening on" (once it listens) and "TLS is disabled.".
        let (text, addresses) = super::read_until(&mut stderr, "TLS is disabled.");
        let first_lines = text.lines().map(|l| format!("{l}\n")).collect();
        let Some(address) = addresses.first().cloned() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the Go exporter did not start: {text}");
        };
        // Keep draining so that Go never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Go {
            child,
            base: format!("http://{address}"),
            first_lines,
        }
    }

    /// `host:port`.
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub fn get(&self, path: &str) -> minreq::Response {
        let url = format!("{}{path}", self.base);
        minreq::get(&url)
            .with_timeout(super::ms(10_000).as_secs())
            .send()
            .unwrap_or_else(|e| panic!("the Go exporter does not answer {url}: {e}"))
    }
}

impl Drop for Go {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
