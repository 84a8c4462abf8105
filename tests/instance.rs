//! Instance scope (`--ecs.scope=instance`) through the real binary: the fake endpoint serves
//! `/tasks` and `/tasks/stats`, and every task's samples must be exactly what task scope writes
//! for the same task's documents, plus `task_arn`. The documents are the shared daemon payloads
//! and tasks generated from our fixtures (0, 1 and 50 of them; stats in another order, missing,
//! for tasks that are gone, or ambiguous); an agent that does not serve `/tasks` is one warning
//! and `ecs_up 0`.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::instance::{array, as_task, elements, task_arn};
use common::{Behaviour, Endpoint, Exporter, parse_exposition, project_dir, value};

/// The task-level and container-level series of an exposition, by task ARN, each as
/// `name{label="value",...} value` with `task_arn` among the labels. Series without a task ARN
/// (`ecs_up`, build info) are left out.
fn by_task(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut tasks: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, labels, v) in parse_exposition(text) {
        let Some(arn) = labels
            .iter()
            .find(|(l, _)| l == "task_arn")
            .map(|l| l.1.clone())
        else {
            continue;
        };
        tasks
            .entry(arn)
            .or_default()
            .insert(line(&name, &labels, v));
    }
    tasks
}

fn line(name: &str, labels: &[(String, String)], v: f64) -> String {
    let mut labels = labels.to_vec();
    labels.sort();
    let pairs: Vec<String> = labels.iter().map(|(l, v)| format!("{l}={v:?}")).collect();
    format!("{name}{{{}}} {v}", pairs.join(","))
}

/// What task scope writes for one task's documents, with its ARN added where a family lacks it:
/// what instance scope must write for that task.
fn single_task(
    exporter: &Exporter,
    endpoint: &Endpoint,
    task: &str,
    stats: &str,
) -> (String, BTreeSet<String>) {
    endpoint.set("/task", Behaviour::json(task));
    endpoint.set("/task/stats", Behaviour::json(stats));
    let text = exporter.metrics();
    let series = parse_exposition(&text);
    let arn = series
        .iter()
        .find(|s| s.0 == "ecs_task_metadata_info")
        .and_then(|s| s.1.iter().find(|(l, _)| l == "task_arn"))
        .map(|l| l.1.clone())
        .expect("a task ARN");
    let mut set = BTreeSet::new();
    for (name, mut labels, v) in series {
        if name == "ecs_up" || name == "ecs_exporter_build_info" {
            continue;
        }
        if !labels.iter().any(|(l, _)| l == "task_arn") {
            labels.push(("task_arn".into(), arn.clone()));
        }
        set.insert(line(&name, &labels, v));
    }
    (arn, set)
}

/// Starts a task-scope and an instance-scope exporter on one endpoint.
fn exporters(endpoint: &Endpoint, flags: &[&str]) -> (Exporter, Exporter) {
    let uri = format!("--ecs.metadata-uri={}", endpoint.base);
    let mut args = vec![
        uri.as_str(),
        "--web.disable-exporter-metrics",
        "--log.level=debug",
    ];
    args.extend(flags);
    let task = Exporter::start(&args);
    args.push("--ecs.scope=instance");
    let instance = Exporter::start(&args);
    (task, instance)
}

/// Serves `tasks` (pairs of single-task documents) in instance scope, with `stats` as
/// `/tasks/stats`, and checks every task against task scope. Returns the instance exposition
/// and the instance-scope exporter's log (at debug level).
fn check_against_task_scope(
    tasks: &[(String, String)],
    stats: String,
    flags: &[&str],
) -> (String, String) {
    let endpoint = Endpoint::start();
    let documents: Vec<String> = tasks.iter().map(|t| t.0.clone()).collect();
    endpoint.set("/tasks", Behaviour::json(array(&documents)));
    endpoint.set("/tasks/stats", Behaviour::json(stats));
    let (task_scope, instance_scope) = exporters(&endpoint, flags);
    let text = instance_scope.metrics();
    let series = parse_exposition(&text);
    assert_eq!(value(&series, "ecs_up", &[]), Some(1.0), "{text}");
    let got = by_task(&text);
    let mut want = BTreeMap::new();
    for (task, stats) in tasks {
        let (arn, set) = single_task(&task_scope, &endpoint, task, stats);
        want.insert(arn, set);
    }
    for (arn, set) in &want {
        let empty = BTreeSet::new();
        let got = got.get(arn).unwrap_or(&empty);
        let missing: Vec<&String> = set.difference(got).collect();
        let extra: Vec<&String> = got.difference(set).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "task {arn}: missing {missing:#?}\nextra {extra:#?}"
        );
    }
    let unknown: Vec<&String> = got.keys().filter(|a| !want.contains_key(*a)).collect();
    assert!(
        unknown.is_empty(),
        "series of tasks not in /tasks: {unknown:?}"
    );
    (text, instance_scope.log())
}

/// How many container ids a stats map has.
fn ids(stats: &str) -> usize {
    match miniserde::json::from_str::<miniserde::json::Value>(stats) {
        Ok(miniserde::json::Value::Object(map)) => map.len(),
        _ => panic!("a stats map"),
    }
}

/// Our fixtures as tasks 0..n of one instance, each distinct.
fn generated(n: usize) -> Vec<(String, String)> {
    let cases = [
        "ec2-cgroupv2",
        "fargate",
        "ec2-bridge-cgroupv1",
        "multi-interface",
        "no-memory-limit",
        "wrong-types",
    ];
    (0..n)
        .map(|i| {
            let dir = project_dir().join("fixtures").join(cases[i % cases.len()]);
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("fixture");
            as_task(&read("task.json"), &read("stats.json"), i, None)
        })
        .collect()
}

#[test]
#[cfg_attr(no_shared, ignore = "../shared is not beside the project")]
fn the_daemon_payloads_give_each_task_its_task_scope_samples_plus_task_arn() {
    let payloads = common::shared_dir().join("payloads");
    let read = |f: &str| std::fs::read_to_string(payloads.join(f)).expect("payload");
    let tasks_text = read("otelcontrib-managedinstances-daemon.tasks.json");
    let stats_text = read("otelcontrib-managedinstances-daemon.tasks-stats.json");
    // Each task's own stats map is the one whose keys are its containers' ids.
    let tasks = elements(&tasks_text);
    let maps = elements(&stats_text);
    let pairs: Vec<(String, String)> = tasks
        .iter()
        .map(|task| {
            let own = maps
                .iter()
                .find(|m| m.split('"').nth(1).is_some_and(|id| task.contains(id)))
                .cloned()
                .unwrap_or_else(|| "{}".into());
            (task.clone(), own)
        })
        .collect();
    let (text, _) = check_against_task_scope(&pairs, stats_text, &["--ecs.container-labels=*"]);
    let series = parse_exposition(&text);
    // Values checked by hand once against the payloads.
    let daemon =
        "arn:aws:ecs:eu-west-1:111222333444:task/mi-cluster/081d2c75d3a2419d95ab6f8979fb61fb";
    let web = "arn:aws:ecs:eu-west-1:111222333444:task/mi-cluster/45f36d5449924905a16c3d03c1fba67a";
    let cpu = |arn: &str, name: &str| {
        value(
            &series,
            "ecs_container_cpu_usage_seconds_total",
            &[("container_name", name), ("task_arn", arn)],
        )
    };
    assert_eq!(cpu(daemon, "monitor-agent"), Some(9.097974));
    assert_eq!(cpu(web, "nginx-proxy"), Some(18.222054));
    assert_eq!(
        value(&series, "ecs_task_cpu_limit_vcpus", &[("task_arn", web)]),
        Some(1.0)
    );
    let groups: Vec<&str> = series
        .iter()
        .filter(|s| s.0 == "ecs_task_identity_info")
        .flat_map(|s| {
            s.1.iter()
                .filter(|(l, _)| l == "group")
                .map(|l| l.1.as_str())
        })
        .collect();
    assert_eq!(
        groups,
        ["daemon:app-monitor", "service:web-frontend-service"]
    );
}

#[test]
fn none_one_and_fifty_tasks_each_as_task_scope_writes_them() {
    for n in [0, 1, 50] {
        let tasks = generated(n);
        // The stats maps in the opposite order to the tasks: pairing is by id.
        let mut maps: Vec<String> = tasks.iter().map(|t| t.1.clone()).collect();
        maps.reverse();
        let (text, log) = check_against_task_scope(&tasks, array(&maps), &[]);
        // Every id paired: neither the warning nor the debug line about unpaired stats.
        assert!(!log.contains("level=WARN"), "{log}");
        assert!(!log.contains("stats of containers that no task"), "{log}");
        // The start-up log says which scope runs and which endpoints it reads.
        let scope_line = log
            .lines()
            .find(|l| l.contains("msg=\"instance scope: every task on the instance"))
            .unwrap_or_else(|| panic!("no instance scope line: {log}"));
        assert!(scope_line.contains("/tasks "), "{scope_line}");
        assert!(scope_line.ends_with("/tasks/stats"), "{scope_line}");
        let infos = parse_exposition(&text)
            .iter()
            .filter(|s| s.0 == "ecs_task_metadata_info")
            .count();
        assert_eq!(infos, n);
        let arns: BTreeSet<String> = by_task(&text).into_keys().collect();
        assert_eq!(arns, (0..n).map(task_arn).collect());
    }
}

#[test]
fn stats_missing_for_a_task_or_for_no_task_lose_nothing_of_the_others() {
    let tasks = generated(3);
    let gone = generated(4).pop().expect("a fourth task").1;
    // Task 1 has no stats map (it started between the two requests); a map belongs to a task
    // that has stopped; null and a number where maps belong.
    let stats = format!("[{}, null, {gone}, 7, {}]", tasks[2].1, tasks[0].1);
    // Task 1 is then what task scope writes without stats.
    let mut expected = tasks.clone();
    expected[1].1 = "{}".into();
    let (text, _) = check_against_task_scope(&expected, stats.clone(), &[]);
    assert_eq!(by_task(&text).len(), 3);

    // The same with elements that are not task documents in /tasks, and the log.
    let documents: Vec<String> = tasks.iter().map(|t| t.0.clone()).collect();
    let endpoint = Endpoint::start();
    endpoint.set(
        "/tasks",
        Behaviour::json(format!("[null, \"x\", {}]", documents.join(","))),
    );
    endpoint.set("/tasks/stats", Behaviour::json(stats));
    let (_task_scope, instance) = exporters(&endpoint, &[]);
    assert_eq!(by_task(&instance.metrics()), by_task(&text));
    let gone_ids = ids(&gone);
    let log = instance.log();
    assert!(
        log.contains(&format!(
            "msg=\"stats of containers that no task kept lists (started or stopped between the requests, or left out)\" ids={gone_ids}"
        )),
        "{gone_ids}: {log}"
    );
    assert!(!log.contains("level=WARN"), "{log}");
}

#[test]
fn an_id_in_two_stats_maps_gets_no_stats_and_a_warning() {
    let tasks = generated(2);
    // Task 0's map twice: its ids can no longer be told apart, so its containers get none.
    let stats = array(&[tasks[0].1.clone(), tasks[1].1.clone(), tasks[0].1.clone()]);
    let mut expected = tasks.clone();
    expected[0].1 = "{}".into();
    check_against_task_scope(&expected, stats.clone(), &[]);

    let documents: Vec<String> = tasks.iter().map(|t| t.0.clone()).collect();
    let endpoint = Endpoint::start();
    endpoint.set("/tasks", Behaviour::json(array(&documents)));
    endpoint.set("/tasks/stats", Behaviour::json(stats));
    let (_task_scope, instance) = exporters(&endpoint, &[]);
    instance.metrics();
    let ids = ids(&tasks[0].1);
    let log = instance.log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("level=WARN")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].ends_with(&format!(
            "msg=\"container stats left out: their container id is in more than one task or stats map\" ids={ids}"
        )),
        "{ids}: {log}"
    );
}

#[test]
fn an_agent_that_does_not_serve_tasks_is_one_warning_and_ecs_up_0() {
    for (status, said) in [
        (
            500,
            "HTTP 500 (Internal Server Error): --ecs.scope=instance reads /tasks",
        ),
        (
            404,
            "HTTP 404 (Not Found): --ecs.scope=instance reads /tasks",
        ),
    ] {
        let endpoint = Endpoint::start();
        endpoint.set("/tasks", Behaviour::Status(status));
        endpoint.set("/tasks/stats", Behaviour::Status(status));
        let uri = format!("--ecs.metadata-uri={}", endpoint.base);
        let exporter = Exporter::start(&[&uri, "--ecs.scope=instance"]);
        for scrape in 1..=2 {
            let text = exporter.metrics();
            let series = parse_exposition(&text);
            assert_eq!(value(&series, "ecs_up", &[]), Some(0.0));
            assert!(by_task(&text).is_empty());
            let log = exporter.log();
            let warnings: Vec<&str> = log.lines().filter(|l| l.contains("level=WARN")).collect();
            assert_eq!(warnings.len(), scrape, "one line per scrape: {log}");
            let last = warnings[scrape - 1];
            assert!(
                last.contains("endpoint=/tasks ")
                    && last.contains(said)
                    && last.contains("managed daemon on ECS Managed Instances"),
                "{last}"
            );
        }
        // Without /tasks there is nothing to pair stats with: /tasks/stats is never asked.
        let (paths, _) = endpoint.take_requests();
        assert!(paths.iter().all(|p| p.ends_with("/tasks")), "{paths:?}");
        assert_eq!(exporter.get("/health").status_code, 200);
    }
}

#[test]
fn a_task_document_where_the_array_belongs_is_a_clear_error() {
    let dir = project_dir().join("fixtures/fargate");
    let endpoint = Endpoint::start();
    endpoint.set("/tasks", Behaviour::file(&dir.join("task.json")));
    endpoint.set("/tasks/stats", Behaviour::file(&dir.join("stats.json")));
    let uri = format!("--ecs.metadata-uri={}", endpoint.base);
    let exporter = Exporter::start(&[&uri, "--ecs.scope=instance"]);
    let series = parse_exposition(&exporter.metrics());
    assert_eq!(value(&series, "ecs_up", &[]), Some(0.0));
    let log = exporter.log();
    assert!(
        log.contains(
            "endpoint=/tasks error=\"response is not a JSON array (malformed, truncated or of another type)\""
        ),
        "{log}"
    );
}

/// A `/tasks/stats` past task scope's 4 MiB cap is read in instance scope (16 MiB): the size
/// 100 tasks of 10 containers reach. Padding makes the size, so that the test stays fast.
#[test]
fn instance_scope_reads_bodies_past_the_task_scope_cap() {
    let tasks = generated(3);
    let maps: Vec<String> = tasks.iter().map(|t| t.1.clone()).collect();
    let padded = format!("{}{}", array(&maps), " ".repeat(6 << 20));
    let endpoint = Endpoint::start();
    let documents: Vec<String> = tasks.iter().map(|t| t.0.clone()).collect();
    endpoint.set("/tasks", Behaviour::json(array(&documents)));
    endpoint.set("/tasks/stats", Behaviour::json(padded.clone()));
    let uri = format!("--ecs.metadata-uri={}", endpoint.base);
    let exporter = Exporter::start(&[&uri, "--ecs.scope=instance"]);
    let series = parse_exposition(&exporter.metrics());
    assert_eq!(value(&series, "ecs_up", &[]), Some(1.0));
    // Task scope refuses the same size.
    endpoint.set("/task", Behaviour::json(tasks[0].0.clone()));
    endpoint.set("/task/stats", Behaviour::json(padded));
    let task_scope = Exporter::start(&[&uri]);
    let series = parse_exposition(&task_scope.metrics());
    assert_eq!(value(&series, "ecs_up", &[]), Some(0.0));
    assert!(task_scope.log().contains("response body larger than 4 MiB"));
    // Past 16 MiB, instance scope refuses too.
    endpoint.set("/tasks/stats", Behaviour::Huge(17 << 20));
    let series = parse_exposition(&exporter.metrics());
    assert_eq!(value(&series, "ecs_up", &[]), Some(0.0));
    assert!(exporter.log().contains("response body larger than 16 MiB"));
}

/// Past the 256 tasks kept, the stats kept are those of the tasks kept, whatever the order of
/// `/tasks/stats`: every task exported is written exactly as it is when its stats come in the
/// same order as the tasks and nothing is left out (with the stats maps cut at 256
/// independently, 257 tasks gave 255 of the 256 their CPU samples, 300 gave 212).
#[test]
fn past_the_tasks_kept_each_kept_task_has_its_own_stats() {
    let kept = 256;
    for n in [257, 300] {
        let tasks = generated(n);
        let documents: Vec<String> = tasks.iter().map(|t| t.0.clone()).collect();
        let mut maps: Vec<String> = tasks.iter().map(|t| t.1.clone()).collect();
        maps.reverse();
        let endpoint = Endpoint::start();
        endpoint.set("/tasks", Behaviour::json(array(&documents)));
        endpoint.set("/tasks/stats", Behaviour::json(array(&maps)));
        let uri = format!("--ecs.metadata-uri={}", endpoint.base);
        let instance = Exporter::start(&[&uri, "--ecs.scope=instance", "--log.level=debug"]);
        let text = instance.metrics();
        assert_eq!(
            value(&parse_exposition(&text), "ecs_up", &[]),
            Some(1.0),
            "{n} tasks"
        );
        let got = by_task(&text);
        assert_eq!(got.len(), kept, "{n} tasks: the first {kept} are written");
        // The same first 256 tasks with their own stats, in order, and nothing past them.
        let in_order: Vec<String> = tasks.iter().take(kept).map(|t| t.1.clone()).collect();
        endpoint.set("/tasks", Behaviour::json(array(&documents[..kept])));
        endpoint.set("/tasks/stats", Behaviour::json(array(&in_order)));
        let want = by_task(&instance.metrics());
        assert_eq!(got.len(), want.len());
        for (arn, series) in &want {
            let empty = BTreeSet::new();
            let mine = got.get(arn).unwrap_or(&empty);
            let missing: Vec<&String> = series.difference(mine).collect();
            assert!(missing.is_empty(), "{n} tasks: {arn} lacks {missing:#?}");
            assert_eq!(mine.len(), series.len(), "{n} tasks: {arn}");
        }
        let log = instance.log();
        let warning = format!("endpoint=/tasks left_out={}", n - kept);
        assert!(log.contains(&warning), "{n} tasks, no {warning:?} in {log}");
        assert!(
            !log.contains("endpoint=/tasks/stats left_out"),
            "{n} tasks: stats are cut with the tasks, not on their own: {log}"
        );
    }
}
