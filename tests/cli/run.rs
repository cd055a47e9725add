use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::{assert_gone, processes, stderr, stdout, Project};

#[test]
fn passing_recipes_pass() {
    let p = Project::new("passing");
    let out = p.recipes().args(["test", "--jobs", "2"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("7 recipes: 7 passed, 0 failed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn output_failure_shows_place_command_and_diff() {
    let p = Project::new("failing");
    let out = p.recipes().args(["run", "wrong-output"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    // The first command printed a line the transcript does not show.
    assert!(text.contains("FAIL wrong-output"), "{text}");
    assert!(
        text.contains("book/fr/src/page.md:4: console step"),
        "{text}"
    );
    assert!(text.contains("$ echo \"bonjour\""), "{text}");
    assert!(text.contains("+bonjour"), "{text}");
}

#[test]
fn diff_shows_expected_and_actual_lines() {
    let p = Project::new("failing");
    let page = p.path().join("book/fr/src/page.md");
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(
        &page,
        text.replace("$ echo \"bonjour\"\n", "$ echo \"bonjour\"\nbonjour\n"),
    )
    .unwrap();
    let out = p.recipes().args(["run", "wrong-output"]).output().unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("book/fr/src/page.md:6: console step"),
        "{text}"
    );
    assert!(text.contains("   un\n"), "{text}");
    assert!(text.contains("-2\n"), "{text}");
    assert!(text.contains("+deux\n"), "{text}");
    assert!(!text.contains('\x1b'), "no colour off a terminal: {text}");
}

#[test]
fn exit_code_failure_shows_the_output() {
    let p = Project::new("failing");
    let out = p.recipes().args(["run", "wrong-exit"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("ended with exit code 1, expected exit code 0"),
        "{text}"
    );
    assert!(text.contains("avant"), "{text}");
    assert!(
        !text.contains("après\n  "),
        "the script stops at the failure: {text}"
    );
}

#[test]
fn every_failure_kind_fails() {
    let p = Project::new("failing");
    for (id, want) in [
        ("wrong-expect", "+réel"),
        ("transcript-exit", "exited with code 2, expected 0"),
        ("wrong-file", "-a = 2"),
        ("wrong-rust", "does not compile"),
    ] {
        let out = p.recipes().args(["run", id]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{id}");
        assert!(stdout(&out).contains(want), "{id}: {}", stdout(&out));
    }
}

#[test]
fn timeout_stops_the_step_and_its_background_children() {
    let p = Project::new("timeout");
    let start = Instant::now();
    let out = p.recipes().args(["run", "slow"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(
        stdout(&out).contains("timed out after 1s"),
        "{}",
        stdout(&out)
    );
    // Neither the background child nor the one that left with setsid
    // (the sandbox takes it as root; without root, the runner adopts it).
    assert_gone("sleep 98765");
}

#[test]
fn ctrl_c_stops_every_step_and_exits_non_zero() {
    let p = Project::new("timeout");
    let page = p.path().join("book/fr/src/page.md");
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(&page, text.replace("timeout=1s", "timeout=1h")).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("recipes");
    let mut child = std::process::Command::new(bin)
        .args(["run", "slow"])
        .current_dir(p.path())
        .env("RECIPES_CACHE", crate::cache_dir())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while processes("sleep 987653").is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A terminal sends SIGINT to the whole foreground process group.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let start = Instant::now();
    let status = child.wait().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(130));
    assert_gone("sleep 98765");
}

use std::os::unix::process::CommandExt;

#[test]
fn unknown_id_exits_2_and_suggests() {
    let p = Project::new("passing");
    let out = p.recipes().args(["run", "transcrip"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no recipe `transcrip`"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("did you mean `transcript`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn json_events_one_per_line() {
    let p = Project::new("failing");
    let out = p
        .recipes()
        .args(["run", "wrong-expect", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["event"], "run-started");
    assert_eq!(events[0]["runs"], 1);
    assert_eq!(events[1]["event"], "started");
    assert_eq!(events[2]["event"], "finished");
    assert_eq!(events[2]["status"], "failed");
    assert_eq!(events[2]["failure"]["line"], 21);
    assert_eq!(events[2]["failure"]["expected"], "attendu");
    assert_eq!(events[2]["failure"]["actual"], "réel\n");
    assert_eq!(events[3]["event"], "summary");
    assert_eq!(events[3]["failed"], 1);
    // A transcript's output is shown as a terminal shows it: no markers.
    let out = p
        .recipes()
        .args(["run", "transcript-exit", "wrong-output", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        !stdout(&out).contains("transcript-mark"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("$ sh -c 'exit 2'"),
        "{}",
        stdout(&out)
    );
}

/// A test case's name, properties and failure message.
pub type JunitCase = (String, Vec<(String, String)>, Option<String>);

/// Parses a JUnit report as XML (any error fails the test) and returns,
/// for each test case, its name, its properties and the message of its
/// failure.
pub fn parse_junit(xml: &str) -> Vec<JunitCase> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut cases = Vec::new();
    loop {
        match reader.read_event().expect("the JUnit report is valid XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |name: &str| {
                    e.attributes()
                        .map(|a| a.expect("a valid attribute"))
                        .find(|a| a.key.as_ref() == name.as_bytes())
                        .map(|a| a.unescape_value().expect("a valid value").into_owned())
                };
                match e.name().as_ref() {
                    b"testcase" => cases.push((attr("name").unwrap(), Vec::new(), None)),
                    b"property" => cases
                        .last_mut()
                        .unwrap()
                        .1
                        .push((attr("name").unwrap(), attr("value").unwrap())),
                    b"failure" | b"error" => cases.last_mut().unwrap().2 = attr("message"),
                    _ => {}
                }
            }
            Event::Text(t) => {
                t.decode().expect("valid text");
            }
            _ => {}
        }
    }
    cases
}

#[test]
fn junit_report_for_ci() {
    let p = Project::new("failing");
    let report = p.path().join("report.xml");
    let out = p
        .recipes()
        .args(["run", "wrong-expect", "wrong-exit", "--junit"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&report).unwrap();
    let cases = parse_junit(&xml);
    assert_eq!(cases.len(), 2, "{xml}");
    assert_eq!(cases[0].0, "wrong-expect");
    assert!(
        cases[0]
            .2
            .as_deref()
            .unwrap()
            .starts_with("book/fr/src/page.md:21:"),
        "{xml}"
    );
    assert!(
        xml.contains("tests=\"2\"") && xml.contains("failures=\"2\""),
        "{xml}"
    );
}

#[test]
fn junit_is_valid_xml_whatever_the_output_holds_and_carries_provenance() {
    let p = Project::new("junit-hostile");
    let report = p.path().join("report.xml");
    let out = p
        .recipes()
        .args(["run", "hostile-output", "--format", "json", "--junit"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&report).unwrap();
    let cases = parse_junit(&xml);
    assert_eq!(cases.len(), 1, "{xml}");
    let (name, properties, failure) = &cases[0];
    assert_eq!(name, "hostile-output");
    assert!(failure.as_deref().unwrap().contains("page.md:8"), "{xml}");
    assert!(
        xml.contains("&lt;tag attr=&quot;x&quot;&gt; &amp; ]]&gt;"),
        "{xml}"
    );
    for key in [
        "kernel",
        "lxc",
        "fixture",
        "fixture_digest",
        "distro",
        "cgroup",
        "lsm",
        "tool",
    ] {
        assert!(properties.iter().any(|(k, _)| k == key), "{key}: {xml}");
    }
    // The same provenance in the JSON `finished` event.
    let finished: serde_json::Value = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "finished")
        .unwrap();
    let provenance = &finished["provenance"];
    assert_eq!(provenance["fixture"], "empty");
    assert!(provenance["kernel"].as_str().unwrap().len() > 1);
    assert!(["v1", "hybrid", "v2"].contains(&provenance["cgroup"].as_str().unwrap()));
    assert!(provenance["lsm"].is_array());
    assert!(provenance["tool"].as_str().unwrap().starts_with("recipes "));
    let kernel = properties.iter().find(|(k, _)| k == "kernel").unwrap();
    assert_eq!(provenance["kernel"], kernel.1.as_str());
}

#[test]
fn bad_options_are_usage_errors() {
    let p = Project::new("passing");
    for args in [
        vec!["test", "--partition", "3/2"],
        vec!["test", "--jobs", "0"],
        vec!["run", "script", "--timeout", "soon"],
        vec!["run", "script", "--fixture", "nope"],
        vec!["frobnicate"],
    ] {
        let out = p.recipes().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
#[ignore = "needs root (to drop to an ordinary user): run as root with --include-ignored"]
fn without_a_sandbox_a_timeout_still_leaves_nothing_running() {
    // Run as an ordinary user (no sandbox): the runner adopts what escaped.
    crate::require_root();
    let p = Project::new("timeout");
    std::fs::set_permissions(
        p.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(assert_cmd::cargo::cargo_bin("recipes"))
        .args(["run", "slow"])
        .current_dir(p.path())
        .env("HOME", p.path())
        .env("RECIPES_CACHE", p.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("not root, so no sandbox"),
        "{}",
        stderr(&out)
    );
    assert_gone("sleep 98765");
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let p = Project::new("changed");
    let out = p
        .recipes()
        .args(["run", "gamma", "alpha", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("plan: 2 recipes of the `fr` book\n"),
        "{text}"
    );
    assert!(
        text.contains("gamma  c.md:3  fixture=empty  after beta\n"),
        "{text}"
    );
    assert!(text.contains("alpha  a.md:3  fixture=empty\n"), "{text}");
    assert!(!text.contains("PASS"), "{text}");
    assert!(
        !p.path().join("target/recipes/status.json").exists(),
        "a dry run records nothing"
    );
    // Even recipes that would fail: nothing runs.
    let failing = Project::new("failing");
    failing
        .recipes()
        .args(["test", "--dry-run"])
        .assert()
        .code(0);
}

#[test]
fn dry_run_json_shows_partition_chain_and_fixture_override() {
    let p = Project::new("changed");
    let out = p
        .recipes()
        .args([
            "test",
            "--dry-run",
            "--format",
            "json",
            "--partition",
            "1/2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(plan["lang"], "fr");
    let recipes = plan["recipes"].as_array().unwrap();
    let ids: Vec<&str> = recipes.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["alpha", "gamma"]);
    assert_eq!(recipes[1]["after"], serde_json::json!(["beta"]));
    assert_eq!(recipes[1]["page"], "c.md");
    assert_eq!(recipes[1]["line"], 3);
    assert_eq!(recipes[1]["fixture"], "empty");
    assert_eq!(recipes[1]["fixture_source"], "declared");
    assert_eq!(plan["fixtures"], serde_json::json!([]));

    let out = p
        .recipes()
        .args(["run", "beta", "--dry-run", "--fixture", "emtpy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown fixture `emtpy`; did you mean `empty`?"),
        "{}",
        stderr(&out)
    );
    let out = p
        .recipes()
        .args([
            "run",
            "beta",
            "--dry-run",
            "--fixture",
            "empty",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(plan["recipes"][0]["fixture_source"], "override");
}

#[test]
fn placeholders_match_volatile_values_and_captures_reach_later_steps() {
    let p = Project::new("captures");
    let out = p.recipes().args(["run", "volatile"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // A capture binds: a later step that prints another value fails.
    let page = p.path().join("book/fr/src/page.md");
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(&page, text.replace("$ echo \"$addr\"", "$ echo 10.9.9.9")).unwrap();
    let out = p.recipes().args(["run", "volatile"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("+10.9.9.9"), "{}", stdout(&out));
}

#[test]
fn unknown_placeholders_and_early_captures_are_located_errors() {
    let p = Project::new("bad-captures");
    for args in [&["check"][..], &["run", "early-capture"]] {
        let out = p.recipes().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let text = stderr(&out) + &stdout(&out);
        assert!(
            text.contains("book/fr/src/page.md:5: unknown placeholder `[PID]`"),
            "{text}"
        );
        assert!(
            text.contains("book/fr/src/page.md:11: `$gw` is used before it is set"),
            "{text}"
        );
    }
}

/// The `flaky` book, its `flip` recipe reading a counter this test serves
/// on the host's loopback (so it passes on every other attempt, in a
/// sandbox or not).
fn flaky_project(runs: usize) -> (Project, std::thread::JoinHandle<()>) {
    use std::io::Write;
    let p = Project::new("flaky");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    for lang in ["fr", "en"] {
        let page = p.path().join(format!("book/{lang}/src/page.md"));
        let text = std::fs::read_to_string(&page).unwrap();
        std::fs::write(&page, text.replace("@PORT@", &port)).unwrap();
    }
    let server = std::thread::spawn(move || {
        for (n, stream) in listener.incoming().take(runs).enumerate() {
            let _ = writeln!(stream.unwrap(), "{n}");
        }
    });
    (p, server)
}

#[test]
fn repeat_runs_each_recipe_n_times_and_names_the_flaky_ones() {
    let (p, server) = flaky_project(3);
    let out = p
        .recipes()
        .args(["test", "--repeat", "3", "--jobs", "1", "--format", "json"])
        .output()
        .unwrap();
    server.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let attempts = |id: &str| -> Vec<(u64, String)> {
        events
            .iter()
            .filter(|e| e["event"] == "finished" && e["id"] == id)
            .map(|e| {
                (
                    e["attempt"].as_u64().unwrap(),
                    e["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        attempts("flip"),
        [(1, "passed"), (2, "failed"), (3, "passed")].map(|(n, s)| (n, s.to_string()))
    );
    assert_eq!(attempts("steady").len(), 3);
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(
        summary["flaky"],
        serde_json::json!([{"id": "flip", "fixture": "empty", "passed": 2, "attempts": 3}])
    );
    // The status store keeps the history, and the badge says so.
    let store: serde_json::Value = serde_json::from_slice(
        &std::fs::read(p.path().join("target/recipes/status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        store["recipes"]["flip"]["empty"]["history"],
        serde_json::json!(["passed", "failed", "passed"])
    );
    let site = p.recipes().args(["book", "build"]).output().unwrap();
    assert!(site.status.success(), "{}", stderr(&site));
    let page = std::fs::read_to_string(p.path().join("target/site/en/page.html")).unwrap();
    assert!(
        page.contains("unstable: 1 of its last 3 runs failed"),
        "{page}"
    );
    let page = std::fs::read_to_string(p.path().join("target/site/page.html")).unwrap();
    assert!(
        page.contains("instable\u{a0}: 1 échec sur ses 3 dernières exécutions"),
        "{page}"
    );
}

#[test]
fn repeat_in_human_output_names_the_flaky_recipe_with_its_counts() {
    let (p, server) = flaky_project(3);
    let out = p
        .recipes()
        .args(["run", "flip", "--repeat", "3"])
        .output()
        .unwrap();
    server.join().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("3 recipes: 2 passed, 1 failed"), "{text}");
    assert!(
        text.contains("flaky flip (fixture empty): passed 2 of 3 attempts"),
        "{text}"
    );
}

/// Every line of `--format json` stdout, read as an event: a line that is
/// not one fails the test.
fn events_of(out: &std::process::Output) -> Vec<recipes::report::Event> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not an event ({e}): {l}")))
        .collect()
}

#[test]
#[ignore = "needs root (namespaces, mounts, a fixture build): run as root with --include-ignored"]
fn a_cold_fixture_build_says_only_events_on_stdout_under_json() {
    use recipes::report::Event;
    crate::require_root();
    let p = Project::new("matrix");
    // A cache of its own: the base is built in this run, not found.
    let cache = p.path().join("cache");
    let out = p
        .recipes()
        .env("RECIPES_CACHE", &cache)
        .args([
            "run",
            "where-am-i",
            "--fixture",
            "busybox",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let events = events_of(&out);
    assert!(matches!(events[0], Event::RunStarted { runs: 1, .. }));
    let at = |wanted: &dyn Fn(&Event) -> bool| events.iter().position(wanted).unwrap();
    let started =
        at(&|e| matches!(e, Event::FixtureBuildStarted { fixture, .. } if fixture == "busybox"));
    let built = at(
        &|e| matches!(e, Event::FixtureBuildFinished { fixture, size_mb: Some(_), error: None, .. } if fixture == "busybox"),
    );
    let recipe = at(&|e| matches!(e, Event::RecipeStarted(s) if s.fixture == "busybox"));
    assert!(started < built && built < recipe, "{}", stdout(&out));
    assert!(matches!(events.last(), Some(Event::RunFinished(s)) if s.tally.passed == 1));
    // Nothing of the build is left on stderr: it was said as events.
    assert!(!stderr(&out).contains("fixture"), "{}", stderr(&out));
    // `fixture build` says the same events.
    let out = p
        .recipes()
        .env("RECIPES_CACHE", p.path().join("cache-2"))
        .args(["fixture", "build", "busybox", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let events = events_of(&out);
    assert!(
        matches!(
            events.as_slice(),
            [
                Event::FixtureBuildStarted { .. },
                ..,
                Event::FixtureBuildFinished {
                    size_mb: Some(_),
                    ..
                }
            ]
        ),
        "{}",
        stdout(&out)
    );
}
