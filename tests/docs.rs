//! What the README and `docs/` say that a test can hold them to: the README's size, every link,
//! every flag and family listed, and the log example, which must be what the binary prints.

mod common;

use std::path::{Path, PathBuf};

use common::{Behaviour, Endpoint, Exporter, project_dir};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README, CONTRIBUTING.md, CHANGELOG.md and every file of `docs/`.
fn documents() -> Vec<PathBuf> {
    let root = project_dir();
    let mut files: Vec<PathBuf> = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    let docs = std::fs::read_dir(root.join("docs")).expect("docs/");
    let mut docs: Vec<PathBuf> = docs.flatten().map(|e| e.path()).collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn the_readme_is_for_users_and_short() {
    let size = read(&project_dir().join("README.md")).len();
    assert!(
        size <= 25_000,
        "README.md is {size} bytes; move detail to docs/"
    );
}

/// GitHub's anchor for a heading: lower case, spaces to hyphens, other punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.push(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

#[test]
fn every_relative_link_leads_somewhere() {
    let mut checked = 0;
    for file in documents() {
        let text = read(&file);
        let dir = file.parent().expect("a directory");
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
            let linked = if path.is_empty() {
                file.clone()
            } else {
                dir.join(path)
            };
            assert!(
                linked.exists(),
                "{}: link to {target}: no such file",
                file.display()
            );
            if !fragment.is_empty() {
                let there = anchors(&read(&linked));
                assert!(
                    there.iter().any(|a| a == fragment),
                    "{}: link to {target}: no such heading in {}",
                    file.display(),
                    linked.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} links");
}

/// `a_{b,c}_d` as `a_b_d`, `a_c_d` (one level of braces, any number of them).
fn expand(name: &str) -> Vec<String> {
    let Some(open) = name.find('{') else {
        return vec![name.to_owned()];
    };
    let Some(close) = name[open..].find('}').map(|c| open + c) else {
        return vec![name.to_owned()];
    };
    let (head, tail) = (&name[..open], &name[close + 1..]);
    name[open + 1..close]
        .split(',')
        .flat_map(|part| expand(&format!("{head}{part}{tail}")))
        .collect()
}

/// Every name in backquotes in `text`, braces expanded.
fn quoted_names(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .flat_map(expand)
        .collect()
}

#[test]
fn every_family_is_in_the_metrics_doc_and_every_documented_one_exists() {
    let doc = read(&project_dir().join("docs/metrics.md"));
    let documented = quoted_names(&doc);
    let families: Vec<&str> = ecs_exporter::collect::FAMILIES
        .iter()
        .map(|f| f.name)
        .collect();
    for name in &families {
        assert!(
            documented.iter().any(|d| d == name),
            "{name} is not in docs/metrics.md"
        );
    }
    for name in documented.iter().filter(|d| d.starts_with("ecs_")) {
        if !name.contains(['{', ' ', '=', '(', '[']) {
            assert!(
                families.contains(&name.as_str()),
                "docs/metrics.md names {name}, which the exporter does not write"
            );
        }
    }
}

#[test]
fn the_readme_lists_every_flag_and_group() {
    use ecs_exporter::cli::{FLAGS, Kind};
    let readme = read(&project_dir().join("README.md"));
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("## Flags"))
        .take_while(|l| !l.starts_with("## Endpoints"))
        .filter(|l| l.starts_with("| `"))
        .collect();
    for flag in FLAGS {
        let shown = match flag.kind {
            Kind::Switch {
                negatable: true, ..
            } => format!("`--[no-]{}`", flag.name),
            _ => format!("`--{}`", flag.name),
        };
        assert!(
            table.iter().any(|row| row.contains(&shown)),
            "the README's flag table has no {shown}"
        );
    }
    let groups = table
        .iter()
        .find(|row| row.starts_with("| `--[no-]collector.NAME`"))
        .expect("a row for the collector groups");
    for switch in ecs_exporter::collect::GROUPS
        .iter()
        .filter_map(|g| g.switch.as_ref())
    {
        assert!(
            groups.contains(&format!("`{}`", switch.name)),
            "the README's collector row has no {0}: add `{0}` to it (CONTRIBUTING.md, \
             \"Adding a collector group\", step 5)",
            switch.name
        );
    }
}

/// A log line with what differs from run to run masked: times, addresses, the metadata URL, the
/// revision, durations.
fn masked(line: &str) -> String {
    line.split(' ')
        .map(|field| match field.split_once('=') {
            Some((key @ ("time" | "address" | "metadata" | "revision" | "duration"), _)) => {
                format!("{key}=X")
            }
            _ => field.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_log_example_is_what_the_binary_prints() {
    let doc = read(&project_dir().join("docs/design.md"));
    let section = doc.split("\n## Logs\n").nth(1).expect("a Logs section");
    let example = section
        .split("```\n")
        .nth(1)
        .expect("an example block in the Logs section");
    let example: Vec<&str> = example.lines().collect();
    assert!(example.len() >= 5, "{example:?}");

    // The run the example shows: a start, a scrape whose /task/stats fails, SIGTERM.
    let endpoint = Endpoint::fixture("fargate");
    endpoint.set("/task/stats", Behaviour::Status(500));
    let mut e = Exporter::start(&["--ecs.metadata-uri", &endpoint.base]);
    assert_eq!(e.get("/metrics").status_code, 200);
    let (status, _) = e.terminate(common::ms(5000)).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    // Everything it wrote is in the pipe once it has exited.
    let printed: Vec<String> = e.log().lines().map(masked).collect();
    for line in example {
        assert!(
            printed.contains(&masked(line)),
            "docs/design.md shows a log line the binary does not print:\n{line}\nit printed:\n{}",
            printed.join("\n")
        );
    }
}
