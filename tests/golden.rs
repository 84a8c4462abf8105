//! The real binary against a fake metadata endpoint serving each `fixtures/<case>/`, compared
//! with `fixtures/<case>/metrics.prom`. `UPDATE_GOLDEN=1 cargo test` rewrites the expected files
//! when a change is intended; read the diff before committing it.

mod common;

use common::{Exporter, FakeMetadata, mask_build_info, project_dir};

fn cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(project_dir().join("fixtures"))
        .expect("fixtures/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("task.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_fixture_matches_its_golden_file() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    let cases = cases();
    assert!(
        cases.len() >= 5,
        "fixtures/ should hold the documented cases, found {cases:?}"
    );
    for case in &cases {
        let dir = project_dir().join("fixtures").join(case);
        let endpoint = FakeMetadata::files(dir.join("task.json"), dir.join("stats.json"));
        let uri = format!("--ecs.metadata-uri={}", endpoint.base);
        let exporter = Exporter::start(&[&uri, "--web.disable-exporter-metrics"]);
        let got = mask_build_info(&exporter.metrics());
        let golden = dir.join("metrics.prom");
        if update {
            std::fs::write(&golden, &got).expect("writing golden file");
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "{case}: output differs from {}:\n{got}",
                golden.display()
            ));
        }
        assert_eq!(
            endpoint.hits(),
            2,
            "{case}: one scrape costs two metadata requests"
        );
    }
    assert!(
        failures.is_empty(),
        "{}\n(UPDATE_GOLDEN=1 rewrites the files)",
        failures.join("\n")
    );
}

#[test]
fn a_fixtures_directory_serves_the_same_as_the_endpoint() {
    let dir = project_dir().join("fixtures/fargate");
    let exporter = Exporter::start(&[
        "--ecs.metadata-uri",
        dir.to_str().expect("UTF-8 path"),
        "--web.disable-exporter-metrics",
    ]);
    let want = std::fs::read_to_string(dir.join("metrics.prom")).expect("golden file");
    assert_eq!(mask_build_info(&exporter.metrics()), want);
}
