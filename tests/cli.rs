//! The command line of the real binary: exit codes and the one line a user sees.

mod common;

use common::{project_dir, run};

#[test]
fn help_lists_every_flag_of_the_tables_and_exits_0() {
    use ecs_exporter::cli::{FLAGS, Kind};
    use ecs_exporter::collect::GROUPS;
    let mut names: Vec<String> = FLAGS
        .iter()
        .map(|f| match f.kind {
            Kind::Switch {
                negatable: true, ..
            } => format!("--[no-]{}", f.name),
            _ => format!("--{}", f.name),
        })
        .collect();
    for switch in GROUPS.iter().filter_map(|g| g.switch.as_ref()) {
        names.push(format!("--[no-]collector.{}", switch.name));
    }
    assert!(names.len() >= 23, "{names:?}");
    for flag in ["-h", "--help"] {
        let (code, out, err) = run(&[flag], &[]);
        assert_eq!((code, err.as_str()), (0, ""));
        for name in &names {
            let shown = out.lines().any(|l| {
                l.trim_start()
                    .trim_start_matches("-h, ")
                    .split(['=', ' '])
                    .next()
                    == Some(name)
            });
            assert!(shown, "--help should list {name}:\n{out}");
        }
    }
}

#[test]
fn version_names_the_program_and_exits_0() {
    let (code, out, _) = run(&["--version"], &[]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(&format!(
            "ecs_exporter, version {} (revision: ",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
    assert!(out.contains("platform:         linux/"), "{out}");
}

/// Exactly one line on stderr, and the exit code.
fn one_line_error(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let (code, out, err) = run(args, env);
    assert_eq!(out, "", "{args:?}: nothing on stdout");
    assert_eq!(
        err.lines().count(),
        1,
        "{args:?}: one line on stderr, got {err:?}"
    );
    (code, err)
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    let env = [("ECS_CONTAINER_METADATA_URI_V4", "http://127.0.0.1:9/v4/x")];
    let rows: &[(&[&str], &str)] = &[
        (&["--bogus"], "unknown flag '--bogus'"),
        // Only switches that say so take `--no-`; never a value or a command.
        (&["--no-help"], "unknown flag '--no-help'"),
        (&["--no-version"], "unknown flag '--no-version'"),
        (&["--no-health-check"], "unknown flag '--no-health-check'"),
        (&["--no-ecs.timeout=3s"], "unknown flag '--no-ecs.timeout'"),
        (
            &["--ecs.scope=both"],
            "--ecs.scope \"both\": must be one of task, instance",
        ),
        (
            &["--log.level=loud"],
            "--log.level \"loud\": must be one of debug, info, warn, error",
        ),
        (
            &["--web.listen-address=nonsense"],
            "--web.listen-address \"nonsense\"",
        ),
        (
            &["--web.config.file=web.yml"],
            "--web.config.file (TLS and basic auth) is not supported yet",
        ),
        (&["--ecs.timeout=fast"], "--ecs.timeout \"fast\""),
        (
            &["--web.telemetry-path=/metrics?x"],
            "must not hold '?', '#' or whitespace",
        ),
        (
            &["--web.telemetry-path=/a b"],
            "must not hold '?', '#' or whitespace",
        ),
        (
            &["--web.telemetry-path=/health"],
            "would hide the landing page or /health",
        ),
        (
            &["--web.telemetry-path=/"],
            "would hide the landing page or /health",
        ),
        (
            &["--ecs.metadata-uri=ftp://x/v4"],
            "unsupported scheme \"ftp\"",
        ),
        (
            &["--web.listen-address=vsock://:9100"],
            "vsock is not supported",
        ),
        (&["--ecs.metadata-uri=http://"], "the URL has no host"),
        (
            &["--ecs.metadata-uri=http://169.254.170.2:99999/v4"],
            "port \"99999\" is not a port from 1 to 65535",
        ),
        (
            &["--ecs.metadata-uri=http://user:s3cret@169.254.170.2/v4"],
            "\"http://user:xxxxx@169.254.170.2/v4\": credentials in the URL are not supported",
        ),
    ];
    for &(args, want) in rows {
        let (code, err) = one_line_error(args, &env);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.starts_with("ecs_exporter: error: "), "{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn without_the_metadata_variable_exit_1_naming_it() {
    let (code, err) = one_line_error(&[], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("ECS_CONTAINER_METADATA_URI_V4 is not set"),
        "{err}"
    );
    assert!(err.contains("runs inside an ECS task"), "{err}");
}

#[test]
fn a_password_in_the_metadata_url_is_never_printed() {
    let (code, err) = one_line_error(
        &["--ecs.metadata-uri=http://user:s3cret@169.254.170.2/v4"],
        &[],
    );
    assert_eq!(code, 2);
    let env = [(
        "ECS_CONTAINER_METADATA_URI_V4",
        "http://u:s3cret@169.254.170.2/v4/x",
    )];
    let (code, log) = one_line_error(&[], &env);
    assert_eq!(code, 1);
    for said in [err, log] {
        assert!(!said.contains("s3cret"), "{said}");
        assert!(said.contains(":xxxxx@169.254.170.2"), "{said}");
    }
}

#[test]
fn a_busy_port_exits_1_naming_the_address() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = busy.local_addr().expect("address").to_string();
    let fixtures = project_dir().join("fixtures/fargate");
    let listen = format!("--web.listen-address={address}");
    let (code, err) = one_line_error(
        &[
            &listen,
            "--ecs.metadata-uri",
            fixtures.to_str().expect("UTF-8"),
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("cannot listen on {address}")),
        "{err}"
    );
}
