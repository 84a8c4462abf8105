//! Build script (kept in src/ to keep the top level small):
//!
//! - records the git revision and the compiler version for `--version` and
//!   `ecs_exporter_build_info`; either falls back to "unknown" when git or rustc cannot say, so
//!   a build from a source tarball still works;
//! - looks for what some tests need beyond Rust (`../shared`, the Go binary, Prometheus,
//!   promtool, Python modules, cfn-lint, a PID namespace) and sets a `no_*` cfg for each that is
//!   missing, so that those tests show as `ignored`, with the reason, in `cargo test`'s own
//!   summary. With `CI` set nothing is ignored: a missing prerequisite fails its test.
//!   `ECS_EXPORTER_SKIP_SHARED=1` ignores the `../shared` tests even in CI (GitHub, where the
//!   Go exporter's data is not available); `ECS_EXPORTER_SHARED=DIR` says where it is when not
//!   beside the project (cargo-mutants tests a copy of the tree elsewhere). The probes rerun
//!   whenever a directory they look in changes (each directory of `PATH`, Python's
//!   site-packages): installing or removing a tool there changes the directory, so the next
//!   `cargo test` probes again and a skip's reason is true of the machine as it is now
//!   (docs/decisions.md, "Test prerequisites").

use std::path::Path;
use std::process::{Command, Stdio};

/// Every cfg this script may set, declared for rustc's check of cfg names.
const PROBES: [&str; 8] = [
    "no_shared",
    "no_go_reference",
    "no_promtool",
    "no_prometheus",
    "no_prometheus_client",
    "no_botocore",
    "no_cfn_lint",
    "no_pid_namespace",
];

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
    println!("cargo:rerun-if-changed=src/build.rs");
    for var in [
        "CI",
        "ECS_EXPORTER_SKIP_SHARED",
        "ECS_EXPORTER_SHARED",
        "PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    for probe in PROBES {
        println!("cargo::rustc-check-cfg=cfg({probe})");
    }
    discard_unwind_tables();
    probe_test_prerequisites();
}

/// The release binary for the scratch image (musl) leaves out `.eh_frame` and
/// `.gcc_except_table`. With `panic = "abort"` nothing unwinds: the tables only let a backtrace
/// walk the stack, and in this stripped binary a backtrace names no function. A panic still
/// prints its message and location and aborts (docs/footprint.md, "Unwind tables"). Binaries
/// only: test binaries unwind to report a failing test.
fn discard_unwind_tables() {
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let musl = std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|e| e == "musl");
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return;
    };
    if !(release && musl) {
        return;
    }
    let script = Path::new(&out).join("discard-unwind-tables.ld");
    let text = "SECTIONS { /DISCARD/ : { *(.eh_frame) *(.gcc_except_table) \
                *(.gcc_except_table.*) } } INSERT AFTER .text;\n";
    if std::fs::write(&script, text).is_ok() {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
}

fn probe_test_prerequisites() {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let skip_shared = std::env::var_os("ECS_EXPORTER_SKIP_SHARED").is_some_and(|v| v == "1");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let shared = match std::env::var_os("ECS_EXPORTER_SHARED") {
        Some(dir) if !dir.is_empty() => Path::new(&dir).to_path_buf(),
        _ => Path::new(&manifest).join("../shared"),
    };
    let go = shared.join("reference/ecs_exporter-v0.4.0-linux-amd64");
    let host_amd64 = std::env::var("HOST").is_ok_and(|h| h.starts_with("x86_64-"));
    let have_shared = shared.is_dir() && !skip_shared;
    // Shared data is the one prerequisite CI may be told to do without.
    if !have_shared && (!ci || skip_shared) {
        println!("cargo:rustc-cfg=no_shared");
    }
    let go_runs = have_shared && go.is_file() && host_amd64;
    // In CI on amd64 with the shared data, a missing Go binary is a failure, not a skip.
    let must_run = ci && !skip_shared && host_amd64;
    if !go_runs && !must_run {
        println!("cargo:rustc-cfg=no_go_reference");
    }
    if ci {
        return;
    }
    watch_installs();
    let runs = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing = [
        ("no_promtool", runs("promtool", &["--version"])),
        ("no_prometheus", runs("prometheus", &["--version"])),
        (
            "no_prometheus_client",
            runs("python3", &["-c", "import prometheus_client"]),
        ),
        ("no_botocore", runs("python3", &["-c", "import botocore"])),
        ("no_cfn_lint", runs("cfn-lint", &["--version"])),
        (
            "no_pid_namespace",
            runs("unshare", &["--pid", "--fork", "--kill-child", "true"]),
        ),
    ];
    for (cfg, present) in missing {
        if !present {
            println!("cargo:rustc-cfg={cfg}");
        }
    }
}

/// Asks cargo to rerun this script when a tool or a Python module is installed or removed:
/// each `PATH` directory and each of Python's site-packages directories. Cargo scans a watched
/// directory whole, so one that does not exist yet (the user's site-packages before a first
/// `pip install --user`) is watched through its nearest existing parent, unless that is the
/// home directory or `/`, which change all the time; a path that does not exist would make
/// cargo rerun the script, and rebuild the crate, on every build.
fn watch_installs() {
    let mut dirs: Vec<std::path::PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let site =
        "import site; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()]))";
    if let Some(text) = output("python3", &["-c", site]) {
        dirs.extend(text.lines().map(std::path::PathBuf::from));
    }
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let too_wide = |d: &Path| d.parent().is_none() || home.as_deref() == Some(d);
    let mut watched = Vec::new();
    for dir in dirs {
        let existing = dir.ancestors().find(|d| d.is_dir()).map(Path::to_path_buf);
        let Some(existing) = existing.filter(|d| !watched.contains(d)) else {
            continue;
        };
        if existing == dir || !too_wide(&existing) {
            println!("cargo:rerun-if-changed={}", existing.display());
            watched.push(existing);
        }
    }
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}
