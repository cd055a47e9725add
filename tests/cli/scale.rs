use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::{stdout, Project};

fn passed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("PASS "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

#[test]
fn partitions_split_the_recipes_without_overlap() {
    let p = Project::new("many");
    let mut seen = BTreeSet::new();
    for k in 1..=3 {
        let out = p
            .recipes()
            .args(["test", "--partition", &format!("{k}/3")])
            .output()
            .unwrap();
        assert!(out.status.success());
        let part = passed(&stdout(&out));
        assert!(!part.is_empty());
        assert!(seen.is_disjoint(&part), "{seen:?} {part:?}");
        // Deterministic: the same share twice is the same set.
        let again = p
            .recipes()
            .args(["test", "--partition", &format!("{k}/3")])
            .output()
            .unwrap();
        assert_eq!(passed(&stdout(&again)), part);
        seen.extend(part);
    }
    assert_eq!(seen.len(), 7);
}

#[test]
fn jobs_run_recipes_in_parallel() {
    let p = Project::new("many");
    // Seven recipes that each sleep 0.3 s: one at a time takes over 2 s.
    let start = Instant::now();
    let out = p.recipes().args(["test", "--jobs", "7"]).output().unwrap();
    let parallel = start.elapsed();
    assert!(out.status.success());
    assert_eq!(passed(&stdout(&out)).len(), 7);
    let start = Instant::now();
    p.recipes().args(["test", "--jobs", "1"]).assert().success();
    let serial = start.elapsed();
    assert!(serial >= Duration::from_millis(2100), "{serial:?}");
    assert!(parallel < serial, "{parallel:?} vs {serial:?}");
}
