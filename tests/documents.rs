//! Malformed and hostile documents through the real binary: nothing panics, a bad field or a bad
//! container hides nothing else, and awkward names come out escaped so that the exposition
//! round-trips through a real parser.

mod common;

use common::{Exporter, Series, TempDir, parse_exposition, project_dir, value};

fn scrape(dir: &std::path::Path, flags: &[&str]) -> (String, Vec<Series>) {
    let path = dir.to_str().expect("UTF-8 path");
    let mut args = vec!["--ecs.metadata-uri", path, "--web.disable-exporter-metrics"];
    args.extend(flags);
    let e = Exporter::start(&args);
    let text = e.metrics();
    let series = parse_exposition(&text);
    (text, series)
}

fn fargate(file: &str) -> String {
    std::fs::read_to_string(project_dir().join("fixtures/fargate").join(file)).expect("fixture")
}

#[test]
fn one_containers_bad_stats_hide_nothing_of_another() {
    let stats = fargate("stats.json");
    // Every value of the exporter container's stats object becomes the wrong type.
    let id = "4f2c1e0a9b8d4c7e8a1f2b3c4d5e6f70-3318760452";
    let start = stats
        .find(&format!("\"{id}\": {{"))
        .expect("the container's stats");
    let bad = format!(
        "{}\"{id}\": {{\"read\": 1, \"cpu_stats\": \"x\", \"memory_stats\": [1], \"blkio_stats\": 7, \"networks\": \"eth1\"}}\n}}\n",
        &stats[..start]
    );
    let tmp = TempDir::new("bad-container");
    let (_, series) = scrape(tmp.documents(&fargate("task.json"), &bad), &[]);
    let golden = parse_exposition(
        &std::fs::read_to_string(project_dir().join("fixtures/fargate/metrics.prom"))
            .expect("golden"),
    );
    let checkout: Vec<&Series> = golden
        .iter()
        .filter(|(_, l, _)| l.iter().any(|(_, v)| v == "checkout"))
        .collect();
    assert!(checkout.len() > 10);
    for (name, labels, v) in checkout {
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(value(&series, name, &labels), Some(*v), "{name}{labels:?}");
    }
    assert_eq!(
        value(
            &series,
            "ecs_container_cpu_usage_seconds_total",
            &[("container_name", "ecs-exporter")]
        ),
        None
    );
    assert_eq!(value(&series, "ecs_up", &[]), Some(1.0));
}

#[test]
fn nulls_huge_negative_and_fractional_numbers_and_duplicate_keys() {
    let mut stats = fargate("stats.json");
    for (from, to) in [
        ("\"total_usage\": 184613001558", "\"total_usage\": null"),
        ("\"usage\": 412647424", "\"usage\": 18446744073709551616"),
        ("\"cache\": 88637440", "\"cache\": -88637440"),
        (
            "\"rx_bytes\": 846219953",
            "\"rx_bytes\": 846219953.5, \"rx_bytes\": 846219954",
        ),
        ("\"tx_bytes\": 192810446", "\"tx_bytes\": 1.5e300"),
    ] {
        assert!(stats.contains(from), "{from}");
        stats = stats.replace(from, to);
    }
    let tmp = TempDir::new("numbers");
    let (_, series) = scrape(tmp.documents(&fargate("task.json"), &stats), &[]);
    let checkout = [("container_name", "checkout")];
    assert_eq!(
        value(&series, "ecs_container_cpu_usage_seconds_total", &checkout),
        None,
        "null"
    );
    assert_eq!(
        value(&series, "ecs_container_memory_usage_bytes", &checkout),
        None,
        "past u64"
    );
    assert_eq!(
        value(&series, "ecs_container_memory_working_set_bytes", &checkout),
        None,
        "needs usage"
    );
    assert_eq!(
        value(
            &series,
            "ecs_container_memory_page_cache_size_bytes",
            &checkout
        ),
        None,
        "negative"
    );
    assert_eq!(
        value(
            &series,
            "ecs_network_receive_bytes_total",
            &[("interface", "eth1")]
        ),
        Some(846219954.0),
        "last duplicate wins"
    );
    assert_eq!(
        value(
            &series,
            "ecs_network_transmit_bytes_total",
            &[("interface", "eth1")]
        ),
        None,
        "1.5e300"
    );
    assert_eq!(
        value(&series, "ecs_container_cpu_user_seconds_total", &checkout),
        Some(151.22),
        "the rest is served"
    );
    assert_eq!(value(&series, "ecs_up", &[]), Some(1.0));
}

/// A number beyond f64's range is not JSON that any ECS agent writes (Go cannot marshal one).
/// miniserde rejects the document that holds it, as Go's encoding/json does: the scrape still
/// answers, with what the other document supports.
#[test]
fn a_number_beyond_f64_fails_only_its_document() {
    let stats = fargate("stats.json").replacen("\"tx_bytes\": 192810446", "\"tx_bytes\": 1e400", 1);
    let tmp = TempDir::new("1e400");
    let (_, series) = scrape(tmp.documents(&fargate("task.json"), &stats), &[]);
    assert_eq!(value(&series, "ecs_up", &[]), Some(0.0));
    assert_eq!(value(&series, "ecs_task_cpu_limit_vcpus", &[]), Some(0.5));
}

/// Awkward names: quotes, backslashes, newlines, and UTF-8.
const NASTY: &[(&str, &str)] = &[
    ("cluster", "prod \"blue\"\\green\nline2"),
    ("family", "fam\\\\ily\n"),
    ("container", "we\"ird\\name\nü✓"),
];

fn nasty_documents(tmp: &TempDir) -> &std::path::Path {
    let json = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let task = fargate("task.json")
        .replace(
            "\"Cluster\": \"arn:aws:ecs:eu-west-1:123456789012:cluster/shop-prod\"",
            &format!("\"Cluster\": \"{}\"", json(NASTY[0].1)),
        )
        .replace(
            "\"Family\": \"checkout\"",
            &format!("\"Family\": \"{}\"", json(NASTY[1].1)),
        )
        .replace(
            "\"Name\": \"checkout\"",
            &format!("\"Name\": \"{}\"", json(NASTY[2].1)),
        );
    tmp.documents(&task, &fargate("stats.json"))
}

#[test]
fn awkward_names_are_escaped_and_round_trip() {
    let tmp = TempDir::new("nasty");
    let (_, series) = scrape(nasty_documents(&tmp), &[]);
    let info = series
        .iter()
        .find(|(n, _, _)| n == "ecs_task_metadata_info")
        .expect("info");
    let label = |k: &str| info.1.iter().find(|(l, _)| l == k).map(|(_, v)| v.as_str());
    assert_eq!(label("cluster"), Some(NASTY[0].1));
    assert_eq!(label("family"), Some(NASTY[1].1));
    let container = [("container_name", NASTY[2].1)];
    assert!(value(&series, "ecs_container_cpu_usage_seconds_total", &container).is_some());
}

/// The same through prometheus_client's parser (Python), when it is installed; CI installs it.
#[test]
#[cfg_attr(
    no_prometheus_client,
    ignore = "python3 with prometheus_client is not installed (pip)"
)]
fn awkward_names_round_trip_through_prometheus_client() {
    let tmp = TempDir::new("nasty-py");
    let (text, _) = scrape(nasty_documents(&tmp), &[]);
    std::fs::write(tmp.0.join("metrics.prom"), &text).expect("write");
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = []\n\
        for family in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
        \x20   for s in family.samples:\n\
        \x20       out.append([s.name, s.labels, s.value])\n\
        print(json.dumps(out))\n";
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            tmp.0.join("metrics.prom").to_str().expect("UTF-8"),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "prometheus_client rejected the exposition: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed = String::from_utf8(out.stdout).expect("UTF-8");
    // JSON-escaped originals must appear as label values in the parser's output.
    let json = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .replace('ü', "\\u00fc")
            .replace('✓', "\\u2713")
    };
    for (what, original) in NASTY {
        assert!(
            parsed.contains(&format!("\"{}\"", json(original))),
            "{what} did not round-trip: {parsed}"
        );
    }
    let ours = parse_exposition(&text);
    let theirs = parsed.matches("], [").count() + 1;
    assert_eq!(ours.len(), theirs, "both parsers see every sample");
}

#[test]
fn a_bad_string_loses_nothing_but_its_bad_characters() {
    // An incomplete UTF-8 sequence in the cluster name, a lone surrogate escape in a container
    // name and in a value nobody reads: the document is read whole.
    let task = fargate("task.json")
        .replacen("\"Name\": \"checkout\"", "\"Name\": \"check\\ud800out\"", 1)
        .replacen('{', "{\"Unknown\": \"\\udfff\",", 1);
    let (before, after) = task.split_once("shop-prod").expect("the cluster name");
    let mut bytes = format!("{before}shop").into_bytes();
    bytes.extend_from_slice(&[0xe2, 0x82]);
    bytes.extend_from_slice(format!("prod{after}").as_bytes());
    let tmp = TempDir::new("bad-strings");
    std::fs::write(tmp.0.join("task.json"), &bytes).expect("write task.json");
    std::fs::write(tmp.0.join("stats.json"), fargate("stats.json")).expect("write stats.json");
    let (_, series) = scrape(&tmp.0, &[]);
    assert_eq!(value(&series, "ecs_up", &[]), Some(1.0));
    let info = series
        .iter()
        .find(|(n, _, _)| n == "ecs_task_metadata_info")
        .expect("task info");
    let cluster = info.1.iter().find(|(k, _)| k == "cluster").map(|(_, v)| v);
    assert_eq!(
        cluster.map(String::as_str),
        Some("arn:aws:ecs:eu-west-1:123456789012:cluster/shop??prod")
    );
    assert!(
        value(
            &series,
            "ecs_container_cpu_usage_seconds_total",
            &[("container_name", "check\u{fffd}out")]
        )
        .is_some()
    );
}
