//! What a release needs to agree on before a tag is pushed: the version in `Cargo.toml`, the
//! changelog entry that becomes the release notes, the image's version label, and the image tag
//! the deployment examples use (README, "Cutting a release").

mod common;

use common::project_dir;

fn read(path: &str) -> String {
    std::fs::read_to_string(project_dir().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The lines of the changelog entry for `version`, as release.yml's awk cuts them.
fn changelog_entry(changelog: &str, version: &str) -> Option<Vec<String>> {
    let head = format!("## [{version}]");
    let mut lines = changelog.lines().skip_while(|l| !l.starts_with(&head));
    lines.next()?;
    Some(
        lines
            .take_while(|l| !l.starts_with("## ["))
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn the_changelog_has_an_entry_for_this_version() {
    let changelog = read("CHANGELOG.md");
    let entry = changelog_entry(&changelog, VERSION)
        .unwrap_or_else(|| panic!("CHANGELOG.md has no '## [{VERSION}]' entry"));
    assert!(
        entry.iter().filter(|l| l.starts_with("- ")).count() >= 3,
        "the {VERSION} entry (the release notes) is nearly empty: {entry:?}"
    );
    assert!(
        changelog.contains(&format!("[{VERSION}]: https://")),
        "CHANGELOG.md links [{VERSION}]"
    );
}

#[test]
fn the_image_label_and_the_examples_name_this_version() {
    let containerfile = read("Containerfile");
    assert!(
        containerfile.contains(&format!("ARG VERSION={VERSION}\n")),
        "Containerfile's ARG VERSION is not {VERSION}"
    );
    let image = format!("ghcr.io/ecs-exporter-rs/ecs_exporter:v{VERSION}");
    for example in [
        "examples/fargate-task-definition.json",
        "examples/ec2-bridge-task-definition.json",
    ] {
        let text = read(example);
        assert!(text.contains(&image), "{example} does not use {image}");
    }
}
