//! CONTRIBUTING.md's recipe for adding a collector group, held step by step: each test fails
//! naming the group or family and the step it is missing, so that a skipped step is found by
//! `cargo test`, not by a user. Everything is read from the table of groups
//! (`collect::GROUPS`) and the families' table, so a new group needs no edit here.

mod common;

use std::path::Path;

use common::project_dir;
use ecs_exporter::collect::{FAMILIES, GROUPS};

const RECIPE: &str = "CONTRIBUTING.md, \"Adding a collector group\"";

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names of the groups that have a `--[no-]collector.NAME` switch.
fn switches() -> Vec<&'static str> {
    GROUPS
        .iter()
        .filter_map(|g| g.switch.as_ref())
        .map(|s| s.name)
        .collect()
}

/// `(file stem, text)` of each file of `dir` with the extension `ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| {
            let stem = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (stem, read(&p))
        })
        .collect();
    found.sort();
    found
}

/// Steps 2 and 3: a file with a `SWITCH` is a module of `collect` and a row of `GROUPS` under
/// its own name (a file that is not a `mod` is not even compiled), and every switch of
/// `GROUPS` is such a file.
#[test]
fn every_group_file_is_a_module_and_a_row_of_groups() {
    let dir = project_dir().join("src/collect");
    let module = read(&dir.join("mod.rs"));
    let files = files(&dir, "rs");
    let switches = switches();
    for (stem, text) in &files {
        if !text.contains("const SWITCH: Switch") {
            continue;
        }
        assert!(
            module.contains(&format!("\nmod {stem};")),
            "src/collect/{stem}.rs is not compiled: add `mod {stem};` to src/collect/mod.rs \
             ({RECIPE}, step 3)"
        );
        assert!(
            text.contains(&format!("name: \"{stem}\"")),
            "src/collect/{stem}.rs: its SWITCH must be named {stem:?}, as its file ({RECIPE}, \
             step 2)"
        );
        assert!(
            switches.contains(&stem.as_str()),
            "src/collect/{stem}.rs has no row in GROUPS: add \
             `switch({stem}::SWITCH, Collect::...({stem}::collect))` to GROUPS in \
             src/collect/mod.rs ({RECIPE}, step 3)"
        );
    }
    for name in switches {
        assert!(
            files.iter().any(|(stem, _)| stem == name),
            "group {name} has no file: write src/collect/{name}.rs ({RECIPE}, step 2)"
        );
    }
}

/// Step 4: every family comes out of some fixture (`UPDATE_GOLDEN=1` writes it into the
/// golden files), and every group is switched off by a variant of some fixture.
#[test]
fn every_family_is_in_a_golden_file_and_every_group_has_an_off_variant() {
    let fixtures = project_dir().join("fixtures");
    let mut golden = String::new();
    let mut variants = String::new();
    for case in std::fs::read_dir(&fixtures).expect("fixtures/").flatten() {
        for (stem, text) in files(&case.path(), "prom") {
            if stem.starts_with("metrics") {
                golden.push_str(&text);
            }
        }
        if let Ok(text) = std::fs::read_to_string(case.path().join("variants")) {
            variants.push_str(&text);
            variants.push('\n');
        }
    }
    for family in FAMILIES.iter().filter(|f| f.name.starts_with("ecs_")) {
        assert!(
            golden.contains(&format!("# TYPE {} ", family.name)),
            "{} is in no golden file: give a fixture what the group reads and run \
             `UPDATE_GOLDEN=1 cargo test --test golden` ({RECIPE}, step 4)",
            family.name
        );
    }
    for name in switches() {
        let off = format!("--no-collector.{name}");
        assert!(
            variants
                .lines()
                .any(|l| l.split_whitespace().any(|flag| flag == off)),
            "no fixture switches group {name} off: add `no-{name}: {off}` to a \
             fixtures/*/variants file and run `UPDATE_GOLDEN=1 cargo test --test golden` \
             ({RECIPE}, step 4)"
        );
    }
}

/// Step 5: each group's families are rows of docs/metrics.md's table of groups with the
/// group's name, and at least one of them is in a PromQL example there (which
/// tests/prometheus.rs runs on a real Prometheus); the README names the group.
#[test]
fn every_group_is_documented_with_a_promql_example() {
    let doc = read(&project_dir().join("docs/metrics.md"));
    let readme = read(&project_dir().join("README.md"));
    let examples: String = doc
        .split("```promql")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .collect();
    let groups_row = readme
        .lines()
        .find(|row| row.starts_with("| `--[no-]collector.NAME`"))
        .expect("the README's flag table has a row for the collector groups");
    for name in switches() {
        // `| `family` | type | labels | group | meaning |`
        let families: Vec<&str> = doc
            .lines()
            .filter(|row| row.split('|').nth(4).map(str::trim) == Some(name))
            .filter_map(|row| row.split('`').nth(1))
            .collect();
        assert!(
            !families.is_empty(),
            "docs/metrics.md has no row of group {name}: add its families to the table of \
             \"The collector groups\" ({RECIPE}, step 5)"
        );
        let prefix = |family: &str| family.split('{').next().unwrap_or(family).to_owned();
        assert!(
            families.iter().any(|f| examples.contains(&prefix(f))),
            "docs/metrics.md has no PromQL example of group {name} (one of {families:?}): add \
             one to its promql block ({RECIPE}, step 5)"
        );
        assert!(
            groups_row.contains(&format!("`{name}`")),
            "the README's `--[no-]collector.NAME` row does not name {name}: add `{name}` to it \
             ({RECIPE}, step 5)"
        );
    }
}
