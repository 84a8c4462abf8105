//! Build script (kept in src/ to keep the top level small): records the git revision and the
//! compiler version for `--version` and `ecs_exporter_build_info`. Either falls back to
//! "unknown" when git or rustc cannot say, so a build from a source tarball still works.

use std::process::Command;

fn main() {
    let revision = std::env::var("ECS_EXPORTER_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| output("git", &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    // "rustc 1.95.0 (59807616e 2026-04-14)" -> "1.95.0"
    let rust_version = output(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=ECS_EXPORTER_REVISION={revision}");
    println!("cargo:rustc-env=ECS_EXPORTER_RUSTC_VERSION={rust_version}");
    println!("cargo:rerun-if-env-changed=ECS_EXPORTER_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}
