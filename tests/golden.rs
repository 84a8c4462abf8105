//! The real binary against a fake metadata endpoint serving each `fixtures/<case>/`, compared
//! with `fixtures/<case>/metrics.prom`: `task.json` and `stats.json` as `/task` and
//! `/task/stats`, or, for an instance case, `tasks.json` and `tasks-stats.json` as `/tasks` and
//! `/tasks/stats` with `--ecs.scope=instance`. A case may also have a `variants` file, one
//! `NAME: FLAGS...` per line, each compared with `metrics.NAME.prom`. `UPDATE_GOLDEN=1 cargo
//! test --test golden` rewrites the expected files when a change is intended; read the diff
//! before committing it.

mod common;

use common::{Behaviour, Endpoint, Exporter, mask_build_info, project_dir};

fn instance(dir: &std::path::Path) -> bool {
    dir.join("tasks.json").is_file()
}

fn cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(project_dir().join("fixtures"))
        .expect("fixtures/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("task.json").is_file() || instance(&e.path()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_fixture_matches_its_golden_file() {
    // Only `UPDATE_GOLDEN=1`: an accidental `UPDATE_GOLDEN=0` or empty value must not rewrite.
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    let cases = cases();
    assert!(
        cases.len() >= 5,
        "fixtures/ should hold the documented cases, found {cases:?}"
    );
    for case in &cases {
        let dir = project_dir().join("fixtures").join(case);
        let mut runs = vec![("metrics.prom".to_owned(), Vec::new())];
        let variants = std::fs::read_to_string(dir.join("variants")).unwrap_or_default();
        for line in variants.lines() {
            if let Some((name, flags)) = line.split_once(':') {
                let flags: Vec<String> = flags.split_whitespace().map(str::to_owned).collect();
                runs.push((format!("metrics.{}.prom", name.trim()), flags));
            }
        }
        let endpoint = if instance(&dir) {
            let endpoint = Endpoint::start();
            endpoint.set("/tasks", Behaviour::file(&dir.join("tasks.json")));
            endpoint.set(
                "/tasks/stats",
                Behaviour::file(&dir.join("tasks-stats.json")),
            );
            endpoint
        } else {
            Endpoint::files(&dir.join("task.json"), &dir.join("stats.json"))
        };
        for (golden, flags) in &runs {
            let uri = format!("--ecs.metadata-uri={}", endpoint.base);
            let mut args = vec![uri.as_str(), "--web.disable-exporter-metrics"];
            if instance(&dir) {
                args.push("--ecs.scope=instance");
            }
            args.extend(flags.iter().map(String::as_str));
            let exporter = Exporter::start(&args);
            let got = mask_build_info(&exporter.metrics());
            let golden = dir.join(golden);
            if update {
                std::fs::write(&golden, &got).expect("writing golden file");
                continue;
            }
            let want = std::fs::read_to_string(&golden).unwrap_or_default();
            if got != want {
                failures.push(format!(
                    "{case} {flags:?}: output differs from {}:\n{got}",
                    golden.display()
                ));
            }
        }
        let requests = 2 * runs.len();
        assert_eq!(
            endpoint.hits(),
            requests,
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
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        // The test above is rewriting the golden files this one reads: compare on the next run,
        // not against a file half rewritten.
        return;
    }
    for (case, scope) in [("fargate", "task"), ("managed-instances", "instance")] {
        let dir = project_dir().join("fixtures").join(case);
        let exporter = Exporter::start(&[
            "--ecs.metadata-uri",
            dir.to_str().expect("UTF-8 path"),
            "--web.disable-exporter-metrics",
            &format!("--ecs.scope={scope}"),
        ]);
        let want = std::fs::read_to_string(dir.join("metrics.prom")).expect("golden file");
        assert_eq!(mask_build_info(&exporter.metrics()), want, "{case}");
    }
}
