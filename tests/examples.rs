//! The deployment kit in `examples/`, checked with the real tools' own models: the task
//! definitions against botocore's ECS service model (what `aws ecs register-task-definition`
//! validates with), the CloudFormation template with cfn-lint, the Prometheus configs and the ADOT
//! collector's embedded one with promtool; and promtool on the exporter's output. (The dashboard
//! runs on a real Prometheus in `tests/prometheus.rs`.)

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Exporter, project_dir};
use ecs_exporter::collect::FAMILIES;
use miniserde::json::{self, Value};

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(project_dir().join("examples"))
        .expect("examples/")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

fn parse(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).expect("readable");
    json::from_str(&text).unwrap_or_else(|_| panic!("{} is not valid JSON", path.display()))
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(o) => o.get(key),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<&str> {
    match v {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v {
        Some(Value::Number(n)) => n.to_string().parse().ok(),
        _ => None,
    }
}

#[test]
fn every_json_file_parses() {
    let json: Vec<PathBuf> = examples()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(json.len() >= 3, "{json:?}");
    for path in json {
        parse(&path);
    }
}

#[test]
fn task_definitions_run_the_sidecar_as_documented() {
    for name in [
        "fargate-task-definition.json",
        "ec2-bridge-task-definition.json",
    ] {
        let task = parse(&project_dir().join("examples").join(name));
        let Some(Value::Array(containers)) = get(&task, "containerDefinitions") else {
            panic!("{name}: containerDefinitions");
        };
        let exporter = containers
            .iter()
            .find(|c| text(get(c, "name")) == Some("ecs-exporter"))
            .unwrap_or_else(|| panic!("{name}: an ecs-exporter container"));
        assert!(
            matches!(get(exporter, "essential"), Some(Value::Bool(false))),
            "{name}: essential false"
        );
        let reservation = number(get(exporter, "memoryReservation")).unwrap_or(0.0);
        assert!(
            (8.0..=64.0).contains(&reservation),
            "{name}: a small memory reservation, {reservation}"
        );
        let Some(Value::Array(ports)) = get(exporter, "portMappings") else {
            panic!("{name}: ports")
        };
        assert!(
            ports
                .iter()
                .any(|p| number(get(p, "containerPort")) == Some(9779.0)),
            "{name}: port 9779"
        );
        let check = get(exporter, "healthCheck").and_then(|h| get(h, "command"));
        let Some(Value::Array(command)) = check else {
            panic!("{name}: healthCheck")
        };
        let words: Vec<&str> = command.iter().filter_map(|w| text(Some(w))).collect();
        assert_eq!(
            words,
            ["CMD", "/bin/ecs_exporter", "--health-check"],
            "{name}"
        );
        // Restarted in place within seconds if it dies or is OOM-killed, without the task.
        let restart = get(exporter, "restartPolicy");
        assert!(
            matches!(
                restart.and_then(|r| get(r, "enabled")),
                Some(Value::Bool(true))
            ),
            "{name}: restartPolicy enabled"
        );
        assert_eq!(
            number(restart.and_then(|r| get(r, "restartAttemptPeriod"))),
            Some(60.0),
            "{name}: the shortest reset period ECS takes"
        );
        // Sized from the measured footprint: 12.3 MiB peak with 1000 idle connections held.
        assert_eq!(number(get(exporter, "memory")), Some(32.0), "{name}");
        assert!(
            get(&task, "propagateTags").is_none(),
            "{name}: not a task definition field"
        );
    }
}

/// Runs a Python script with arguments: (succeeded, what it printed).
fn python(script: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

/// botocore's own validation of an ECS operation's input, as the AWS CLI runs it before sending
/// (no credentials or network needed): `OPERATION EXTRA_JSON FILE...`, each file's object with
/// EXTRA_JSON's fields added (what the CLI's own arguments add to `--cli-input-json`).
const BOTOCORE_VALIDATE: &str = "\
import json, sys, botocore.session
from botocore.validate import ParamValidator
model = botocore.session.get_session().get_service_model('ecs')
shape = model.operation_model(sys.argv[1]).input_shape
failed = False
for path in sys.argv[3:]:
    params = json.load(open(path))
    params.update(json.loads(sys.argv[2]))
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        failed = True
        print(path + ': ' + report.generate_report())
sys.exit(1 if failed else 0)
";

/// Validates `files` as input of the ECS `operation`, with `extra`'s fields added.
fn botocore_validates(operation: &str, extra: &str, files: &[&str]) -> (bool, String) {
    let mut args = vec![operation, extra];
    args.extend(files);
    python(BOTOCORE_VALIDATE, &args)
}

#[test]
#[cfg_attr(no_botocore, ignore = "python3 with botocore is not installed (pip)")]
fn task_definitions_are_valid_input_of_register_task_definition() {
    let dir = project_dir().join("examples");
    let files: Vec<String> = [
        "fargate-task-definition.json",
        "ec2-bridge-task-definition.json",
    ]
    .iter()
    .map(|f| dir.join(f).to_string_lossy().into_owned())
    .collect();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let (ok, said) = botocore_validates("RegisterTaskDefinition", "{}", &args);
    assert!(ok, "botocore rejects an example task definition:\n{said}");

    // The same check rejects what the AWS CLI rejects (the field that was once in the kit).
    let tmp = common::TempDir::new("botocore");
    let original = std::fs::read_to_string(&files[0]).expect("readable");
    let bad = original.replacen('{', "{\"propagateTags\": \"TASK_DEFINITION\",", 1);
    let bad_path = tmp.0.join("bad.json");
    std::fs::write(&bad_path, bad).expect("writes");
    let (ok, said) = botocore_validates(
        "RegisterTaskDefinition",
        "{}",
        &[bad_path.to_str().expect("UTF-8")],
    );
    assert!(
        !ok && said.contains("Unknown parameter in input: \"propagateTags\""),
        "{said}"
    );
}

/// The managed daemon's two API inputs, against the installed botocore's model of
/// RegisterDaemonTaskDefinition and CreateDaemon, and what docs/deploying.md says of them.
#[test]
#[cfg_attr(no_botocore, ignore = "python3 with botocore is not installed (pip)")]
fn the_daemon_examples_are_valid_input_of_the_daemon_operations() {
    let dir = project_dir().join("examples");
    let definition = dir.join("managed-daemon-task-definition.json");
    let definition = definition.to_str().expect("UTF-8");
    let (ok, said) = botocore_validates("RegisterDaemonTaskDefinition", "{}", &[definition]);
    assert!(ok, "botocore rejects the daemon task definition:\n{said}");
    // The daemon task definition's ARN is an argument of create-daemon (register prints it).
    let daemon = dir.join("managed-daemon.json");
    let (ok, said) = botocore_validates(
        "CreateDaemon",
        r#"{"daemonTaskDefinitionArn": "the ARN register-daemon-task-definition printed"}"#,
        &[daemon.to_str().expect("UTF-8")],
    );
    assert!(ok, "botocore rejects the daemon:\n{said}");
    // A daemon task definition has neither a network mode nor port mappings (the docs say so,
    // and why the exporter listens on the instance's network).
    for field in [
        r#"{"networkMode": "host"}"#,
        r#"{"requiresCompatibilities": ["MANAGED_INSTANCES"]}"#,
    ] {
        let (ok, said) = botocore_validates("RegisterDaemonTaskDefinition", field, &[definition]);
        assert!(
            !ok && said.contains("Unknown parameter in input"),
            "{field}: {said}"
        );
    }
    let ports = std::fs::read_to_string(dir.join("managed-daemon-task-definition.json"))
        .expect("readable")
        .replacen(
            "\"essential\": true,",
            "\"essential\": true, \"portMappings\": [{\"containerPort\": 9779}],",
            1,
        );
    let tmp = common::TempDir::new("daemon");
    let with_ports = tmp.0.join("ports.json");
    std::fs::write(&with_ports, ports).expect("writes");
    let (ok, said) = botocore_validates(
        "RegisterDaemonTaskDefinition",
        "{}",
        &[with_ports.to_str().expect("UTF-8")],
    );
    assert!(
        !ok && said.contains("Unknown parameter in containerDefinitions[0]: \"portMappings\""),
        "{said}"
    );
    // What the docs tell the reader to set on the capacity provider exists, at creation and
    // at update.
    let (ok, said) = python(
        "\
import botocore.session
model = botocore.session.get_session().get_service_model('ecs')
for op in ('CreateCapacityProvider', 'UpdateCapacityProvider'):
    provider = model.operation_model(op).input_shape.members['managedInstancesProvider']
    assert 'CAPACITY_PROVIDER' in provider.members['propagateTags'].enum, op
assert 'TagResource' in model.operation_names
",
        &[],
    );
    assert!(ok, "{said}");

    // And it runs the exporter as the docs say: instance scope, restarted in place (a daemon
    // task that stops makes ECS replace the instance), health-checked, memory above what
    // hostile documents cost in instance scope (96 MiB, tests/hostile.rs).
    let task = parse(&dir.join("managed-daemon-task-definition.json"));
    let Some(Value::Array(containers)) = get(&task, "containerDefinitions") else {
        panic!("containerDefinitions");
    };
    let [exporter] = containers.as_slice() else {
        panic!("one container");
    };
    let words = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Array(words)) => words
                .iter()
                .filter_map(|w| text(Some(w)).map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    assert_eq!(words(get(exporter, "command")), ["--ecs.scope=instance"]);
    assert!(matches!(
        get(exporter, "essential"),
        Some(Value::Bool(true))
    ));
    let restart = get(exporter, "restartPolicy");
    assert!(matches!(
        restart.and_then(|r| get(r, "enabled")),
        Some(Value::Bool(true))
    ));
    assert_eq!(
        words(get(exporter, "healthCheck").and_then(|h| get(h, "command"))),
        ["CMD", "/bin/ecs_exporter", "--health-check"]
    );
    assert!(number(get(exporter, "memory")).is_some_and(|m| m >= 96.0));
}

#[test]
#[cfg_attr(no_cfn_lint, ignore = "cfn-lint is not installed (pip)")]
fn the_daemon_template_passes_cfn_lint_without_warnings() {
    let template = project_dir().join("examples/cloudformation-managed-daemon.yml");
    let (clean, said) = cfn_lint(&template);
    assert!(clean, "cfn-lint {}:\n{said}", template.display());
    let text = std::fs::read_to_string(&template).expect("readable");
    for needle in [
        "Type: AWS::ECS::DaemonTaskDefinition",
        "Type: AWS::ECS::Daemon",
        "Command: [\"--ecs.scope=instance\"]",
        "RestartPolicy:",
        "Command: [\"CMD\", \"/bin/ecs_exporter\", \"--health-check\"]",
        "Memory: 128",
    ] {
        assert!(text.contains(needle), "the template lacks {needle}");
    }
    // cfn-lint knows the daemon resources' properties.
    let tmp = common::TempDir::new("cfn-daemon");
    let bad = tmp.0.join("bad.yml");
    std::fs::write(&bad, text.replace("DrainPercent: 25", "DrainPercents: 25")).expect("writes");
    assert!(
        !cfn_lint(&bad).0,
        "cfn-lint accepts a misspelt daemon property"
    );
}

/// cfn-lint on a template: (no errors and no warnings, what it said).
fn cfn_lint(path: &std::path::Path) -> (bool, String) {
    let out = Command::new("cfn-lint")
        .arg(path)
        .output()
        .expect("cfn-lint runs");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success() && said.trim().is_empty(), said)
}

#[test]
#[cfg_attr(no_cfn_lint, ignore = "cfn-lint is not installed (pip)")]
fn the_cloudformation_template_passes_cfn_lint_without_warnings() {
    let template = project_dir().join("examples/cloudformation.yml");
    let (clean, said) = cfn_lint(&template);
    assert!(clean, "cfn-lint examples/cloudformation.yml:\n{said}");
    // It holds the sidecar as the JSON examples do.
    let text = std::fs::read_to_string(&template).expect("readable");
    for needle in [
        "Essential: false",
        "RestartPolicy:",
        "Command: [\"CMD\", \"/bin/ecs_exporter\", \"--health-check\"]",
        "LogDriver: awslogs",
        "ExecutionRoleArn: !GetAtt ExecutionRole.Arn",
    ] {
        assert!(text.contains(needle), "the template lacks {needle}");
    }
    // And cfn-lint does catch a mistake in it.
    let tmp = common::TempDir::new("cfn");
    let bad = tmp.0.join("bad.yml");
    std::fs::write(
        &bad,
        text.replace("RestartAttemptPeriod: 60", "RestartAttemptPeriods: 60"),
    )
    .expect("writes");
    assert!(!cfn_lint(&bad).0, "cfn-lint accepts a misspelt property");
}

#[test]
#[cfg_attr(
    any(no_promtool, no_cfn_lint),
    ignore = "promtool (Debian package prometheus) or PyYAML (pip, with cfn-lint) is not installed"
)]
fn the_adot_collector_config_is_wired_and_its_scrape_config_passes_promtool() {
    let config = project_dir().join("examples/adot-collector.yml");
    let tmp = common::TempDir::new("adot");
    let scrape = tmp.0.join("prometheus.yml");
    // Every pipeline names defined components; the receiver's config is a Prometheus config.
    let script = "\
import json, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
for p in c['service']['pipelines'].values():
    for kind in ('receivers', 'exporters'):
        for name in p[kind]:
            assert name in c[kind], name
for name in c['service']['extensions']:
    assert name in c['extensions'], name
assert c['exporters']['prometheusremotewrite']['auth']['authenticator'] == 'sigv4auth'
assert c['extensions']['sigv4auth']['service'] == 'aps'
targets = c['receivers']['prometheus']['config']['scrape_configs'][0]['static_configs'][0]['targets']
assert targets == ['localhost:9779'], targets
json.dump(c['receivers']['prometheus']['config'], open(sys.argv[2], 'w'))
";
    let (ok, said) = python(
        script,
        &[
            config.to_str().expect("UTF-8"),
            scrape.to_str().expect("UTF-8"),
        ],
    );
    assert!(ok, "{said}");
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(&scrape)
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
#[cfg_attr(
    no_promtool,
    ignore = "promtool is not installed (Debian package prometheus)"
)]
fn promtool_accepts_the_prometheus_configs_it_understands() {
    let promtool = "promtool";
    let configs: Vec<PathBuf> = examples()
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("prometheus-") && n.ends_with(".yml"))
        })
        .collect();
    assert!(configs.len() >= 2);
    for path in configs {
        let out = Command::new(promtool)
            .arg("check")
            .arg("config")
            .arg(&path)
            .output()
            .expect("promtool runs");
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let uses_aws_sd = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .contains("aws_sd_configs:");
        if uses_aws_sd && said.contains("field aws_sd_configs not found") {
            // Prometheus's AWS (ECS) service discovery is newer than this promtool (Debian's
            // 2.42); its relabelling runs on the real Prometheus in tests/prometheus.rs.
            continue;
        }
        assert!(
            out.status.success(),
            "promtool check config {}: {said}",
            path.display()
        );
    }
}

/// Metric names in a PromQL expression: identifiers that start like ours.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = String::new();
    for c in expr.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' {
            current.push(c);
        } else {
            if current.starts_with("ecs_")
                || current.starts_with("process_")
                || current.starts_with("promhttp_")
            {
                names.push(std::mem::take(&mut current));
            }
            current.clear();
        }
    }
    names
}

fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o.iter() {
                match (k.as_str(), v) {
                    ("expr" | "query", Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn every_metric_the_dashboard_queries_exists() {
    let dashboard = parse(&project_dir().join("examples/grafana-dashboard.json"));
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    assert!(queries.len() >= 10, "{queries:?}");
    let mut used = 0;
    for expr in &queries {
        for name in metric_names(expr) {
            assert!(
                FAMILIES.iter().any(|f| f.name == name),
                "the dashboard queries {name}, which the exporter does not write"
            );
            used += 1;
        }
    }
    assert!(used >= 15);
}

/// Grafana's import asks for a data source only when the dashboard declares it in `__inputs`
/// and uses it everywhere as `${DS_PROMETHEUS}`; a hard-coded uid shows "data source not found".
#[test]
fn the_dashboard_is_import_ready() {
    let dashboard = parse(&project_dir().join("examples/grafana-dashboard.json"));
    let Some(Value::Array(inputs)) = get(&dashboard, "__inputs") else {
        panic!("__inputs");
    };
    assert!(
        inputs
            .iter()
            .any(|i| text(get(i, "name")) == Some("DS_PROMETHEUS")
                && text(get(i, "pluginId")) == Some("prometheus"))
    );
    let Some(Value::Array(requires)) = get(&dashboard, "__requires") else {
        panic!("__requires");
    };
    let required: Vec<&str> = requires.iter().filter_map(|r| text(get(r, "id"))).collect();
    for id in ["grafana", "prometheus", "timeseries", "stat", "table"] {
        assert!(required.contains(&id), "__requires lacks {id}");
    }
    // Every datasource reference, wherever it is, is the input.
    fn datasources<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(o) => {
                for (k, v) in o.iter() {
                    if k == "datasource" {
                        out.push(v);
                    } else {
                        datasources(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| datasources(v, out)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    datasources(&dashboard, &mut refs);
    assert!(refs.len() >= 20, "{}", refs.len());
    for r in refs {
        assert_eq!(text(get(r, "uid")), Some("${DS_PROMETHEUS}"));
    }
    // Cluster, family and task to pick, from ecs_task_metadata_info.
    let Some(Value::Array(variables)) = get(&dashboard, "templating").and_then(|t| get(t, "list"))
    else {
        panic!("templating");
    };
    let names: Vec<&str> = variables
        .iter()
        .filter_map(|v| text(get(v, "name")))
        .collect();
    assert_eq!(names, ["cluster", "family", "task"]);
    let Some(Value::Array(panels)) = get(&dashboard, "panels") else {
        panic!("panels");
    };
    for panel in panels {
        let title = text(get(panel, "title")).unwrap_or("");
        let kind = text(get(panel, "type")).unwrap_or("");
        let Some(Value::Array(targets)) = get(panel, "targets") else {
            panic!("{title}: targets");
        };
        for t in targets {
            let expr = text(get(t, "expr")).unwrap_or("");
            // Every per-task query is filtered by the variables (ecs_up alone cannot be: a task
            // whose metadata failed has no identity).
            if !expr.starts_with("count(ecs_up") {
                assert!(expr.contains("task_arn=~\"$task\""), "{title}: {expr}");
            }
            // Legends tell tasks apart.
            if kind == "timeseries" {
                let legend = text(get(t, "legendFormat")).unwrap_or("");
                assert!(legend.contains("{{task_id}}"), "{title}: legend {legend:?}");
            }
        }
        if kind == "table" {
            let transformations = get(panel, "transformations");
            let Some(Value::Array(steps)) = transformations else {
                panic!("{title}: transformations");
            };
            assert_eq!(
                text(steps.first().and_then(|s| get(s, "id"))),
                Some("merge"),
                "{title}"
            );
        }
    }
}

#[test]
#[cfg_attr(
    no_promtool,
    ignore = "promtool is not installed (Debian package prometheus)"
)]
fn promtool_check_metrics_is_clean_for_every_fixture() {
    let promtool = "promtool";
    for entry in std::fs::read_dir(project_dir().join("fixtures"))
        .expect("fixtures")
        .flatten()
    {
        let dir = entry.path();
        let scope = if dir.join("tasks.json").is_file() {
            "--ecs.scope=instance"
        } else {
            "--ecs.scope=task"
        };
        let e = Exporter::start(&["--ecs.metadata-uri", dir.to_str().expect("UTF-8"), scope]);
        let text = e.metrics();
        assert!(text.contains("\necs_up 1\n"), "{}", dir.display());
        let mut child = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool runs");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("promtool ends");
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{}: promtool check metrics said: {said}",
            dir.display()
        );
    }
}
