//! What this build is: the `--version` text and `ecs_exporter_build_info`'s labels.

/// The labels of `ecs_exporter_build_info`. Go's `goversion` becomes `rustversion`; `goos` and
/// `goarch` keep their names and Go's values (`linux`, `amd64`, `arm64`) so that queries written
/// against the Go exporter still match.
#[derive(Debug)]
pub struct BuildInfo {
    pub version: &'static str,
    pub revision: &'static str,
    pub rustversion: &'static str,
    pub goos: &'static str,
    pub goarch: &'static str,
}

pub const BUILD: BuildInfo = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    revision: env!("ECS_EXPORTER_REVISION"),
    rustversion: env!("ECS_EXPORTER_RUSTC_VERSION"),
    goos: std::env::consts::OS,
    goarch: go_arch(std::env::consts::ARCH),
};

/// Go's name for a Rust target architecture, so that `goarch` matches the Go exporter's.
const fn go_arch(arch: &'static str) -> &'static str {
    match arch.as_bytes() {
        b"x86_64" => "amd64",
        b"aarch64" => "arm64",
        _ => arch,
    }
}

/// `--version`, shaped like Go's `version.Print`.
pub fn text() -> String {
    let b = &BUILD;
    format!(
        "ecs_exporter, version {} (revision: {})\n  rust version:     {}\n  platform:         {}/{}\n",
        b.version, b.revision, b.rustversion, b.goos, b.goarch
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_shipped_architectures_have_go_names() {
        assert_eq!(super::go_arch("x86_64"), "amd64");
        assert_eq!(super::go_arch("aarch64"), "arm64");
        assert_eq!(super::go_arch("riscv64"), "riscv64");
    }
}
