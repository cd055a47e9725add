use serde_json::{json, Value};

use crate::{stdout, Project};

#[test]
fn json_matches_the_contract_on_edge_case_fences() {
    let p = Project::new("edge-fences");
    let out = p
        .recipes()
        .args(["list", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let step = |line: u32, kind: &str, syntax: &str, attrs: Value| json!({"line": line, "kind": kind, "syntax": syntax, "attrs": attrs});
    let recipe = |id: &str, page: &str, line: u32, steps: Vec<Value>| json!({"id": id, "lang": "fr", "page": page, "line": line, "fixture": "empty", "steps": steps});
    let want = json!([
        recipe(
            "tilde",
            "fences.md",
            5,
            vec![
                step(5, "script", "sh", json!({"recipe": "tilde"})),
                step(
                    46,
                    "file",
                    "ini",
                    json!({"recipe": "tilde", "file": "$ROOTFS/etc/é.conf", "mode": "0644"})
                ),
            ]
        ),
        recipe(
            "commas",
            "fences.md",
            11,
            vec![step(
                11,
                "console",
                "console",
                json!({"recipe": "commas", "timeout": "5s"})
            ),]
        ),
        recipe(
            "in-list",
            "fences.md",
            34,
            vec![step(34, "script", "sh", json!({"recipe": "in-list"}))]
        ),
        recipe(
            "in-quote",
            "fences.md",
            40,
            vec![step(
                40,
                "script",
                "sh",
                json!({"recipe": "in-quote", "exit": "3"})
            ),]
        ),
        recipe(
            "deep",
            "deep/sub.md",
            3,
            vec![
                step(3, "script", "bash", json!({"recipe": "deep"})),
                step(
                    7,
                    "expect",
                    "text",
                    json!({"recipe": "deep", "expect": true})
                ),
            ]
        ),
        recipe(
            "crlf",
            "crlf.md",
            5,
            vec![step(5, "console", "console", json!({"recipe": "crlf"}))]
        ),
    ]);
    assert_eq!(got, want);
}

#[test]
fn english_list_names_its_language() {
    let p = Project::new("edge-fences");
    let out = p
        .recipes()
        .args(["--lang", "en", "list", "--format", "json"])
        .output()
        .unwrap();
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(got.as_array().unwrap().iter().all(|r| r["lang"] == "en"));
}

#[test]
fn human_list_shows_page_and_line() {
    let p = Project::new("edge-fences");
    let out = p.recipes().arg("list").output().unwrap();
    let text = stdout(&out);
    assert!(text.contains("deep/sub.md:3"), "{text}");
    assert!(text.contains("crlf.md:5"), "{text}");
}

#[test]
fn crlf_pages_run() {
    let p = Project::new("edge-fences");
    p.recipes()
        .args(["run", "crlf", "deep", "in-quote"])
        .assert()
        .success();
}

#[test]
fn json_names_the_host_and_prerequisite_a_recipe_runs_with() {
    let p = Project::new("stock");
    let page = p.path().join("book/fr/src/stock.md");
    let mut text = std::fs::read_to_string(&page).unwrap();
    text.push_str("\n```sh recipe=after-lease needs=stock-lease\ntrue\n```\n");
    std::fs::write(&page, text).unwrap();
    let out = p
        .recipes()
        .args(["list", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let got: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let find = |id: &str| got.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(find("stock-lease")["host"], "debian-stock");
    assert!(find("stock-lease").get("needs").is_none());
    // The host comes with the prerequisite.
    assert_eq!(find("after-lease")["host"], "debian-stock");
    assert_eq!(find("after-lease")["needs"], "stock-lease");
    assert!(find("where-am-i").get("host").is_none());
}
