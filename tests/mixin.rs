//! The monitoring mixin of `examples/mixin/` (alerts, recording rules, dashboard, rendered from
//! jsonnet by `.ci/mixin.sh`):
//!
//! - promtool checks the rendered rules and runs their unit tests (`tests.yaml`: every alert
//!   silent before its `for`, then firing for the task where its condition holds and not for
//!   the one beside it, in task scope and in instance scope; the recording rules' values);
//! - every alert has a severity, a summary, a description, a runbook link to its own section
//!   of `docs/runbook.md`, and unit tests in both scopes.

mod common;

use std::process::Command;

use common::project_dir;

fn mixin_file(name: &str) -> String {
    let path = project_dir().join("examples/mixin").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The rules of the rendered alerts file, each as its lines (jsonnet writes one `- alert:`
/// line per rule and its fields indented below it).
fn alert_rules() -> Vec<(String, String)> {
    let text = mixin_file("prometheus_alerts.yaml");
    let mut rules: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.trim_start().strip_prefix("- alert: ") {
            rules.push((name.trim_matches('"').to_owned(), String::new()));
        } else if let Some((_, body)) = rules.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    rules
}

#[test]
#[cfg_attr(
    no_promtool,
    ignore = "promtool is not installed (Debian package prometheus)"
)]
fn promtool_checks_the_rules_and_passes_their_unit_tests() {
    let dir = project_dir().join("examples/mixin");
    let check = Command::new("promtool")
        .args([
            "check",
            "rules",
            "prometheus_alerts.yaml",
            "prometheus_rules.yaml",
        ])
        .current_dir(&dir)
        .output()
        .expect("promtool runs");
    let said = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "promtool check rules: {said}");
    assert!(said.contains("SUCCESS: 13 rules found"), "{said}");
    assert!(said.contains("SUCCESS: 12 rules found"), "{said}");
    let test = Command::new("promtool")
        .args(["test", "rules", "tests.yaml"])
        .current_dir(&dir)
        .output()
        .expect("promtool runs");
    let said =
        String::from_utf8_lossy(&test.stdout).into_owned() + &String::from_utf8_lossy(&test.stderr);
    assert!(test.status.success(), "promtool test rules: {said}");
    assert!(said.contains("SUCCESS"), "{said}");
}

#[test]
fn every_alert_is_described_tested_in_both_scopes_and_has_a_runbook_section() {
    let rules = alert_rules();
    assert_eq!(
        rules.len(),
        13,
        "{:?}",
        rules.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    let tests = mixin_file("tests.yaml");
    let runbook =
        std::fs::read_to_string(project_dir().join("docs/runbook.md")).expect("docs/runbook.md");
    for (name, body) in &rules {
        for field in ["severity: ", "summary: ", "description: ", "for: "] {
            assert!(body.contains(field), "{name} has no {field}");
        }
        let anchor = name.to_ascii_lowercase();
        assert!(
            body.contains(&format!("runbook_url: \"https://github.com/ecs-exporter-rs/ecs_exporter/blob/main/docs/runbook.md#{anchor}\"")),
            "{name}: runbook_url"
        );
        assert!(
            runbook.contains(&format!("\n## {name}\n")),
            "docs/runbook.md has no section {name}"
        );
        // Two checks (before and after `for`) in each of the two scopes.
        let checks = tests.matches(&format!("alertname: \"{name}\"\n")).count();
        assert_eq!(checks, 4, "{name}: {checks} checks in tests.yaml");
    }
    // Each scope's tests expect alerts of both scopes' labels: a task scope target
    // (ip:port) and an instance scope one (an instance id with task_arn).
    assert!(tests.contains("job: \"ecs-task\""));
    assert!(tests.contains("job: \"ecs-exporter-instances\""));
}
