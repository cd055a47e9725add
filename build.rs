//! Puts the git commit into `--version`: `0.1.0 (abc1234)`, with `-dirty`
//! when tracked files differ from it. Outside a git checkout (a crate
//! tarball, `cargo install` from a copy) the version is the bare number.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    // Rebuild when the checkout moves (commit, checkout, staging) or the
    // sources change; other edits do not change the binary.
    for path in ["build.rs", "Cargo.toml", "Cargo.lock", "src"] {
        println!("cargo:rerun-if-changed={path}");
    }
    let commit = git(&["rev-parse", "--short=10", "HEAD"]);
    // Each result's provenance names the commit of the tool that proved it.
    println!(
        "cargo:rustc-env=RECIPES_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    if let (Some(dir), Some(common)) = (
        git(&["rev-parse", "--absolute-git-dir"]),
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
    ) {
        for path in [
            Path::new(&dir).join("HEAD"),
            Path::new(&dir).join("index"),
            Path::new(&common).join("refs/heads"),
            Path::new(&common).join("packed-refs"),
        ] {
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let long = match commit {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!("{version} ({commit}{})", if dirty { "-dirty" } else { "" })
        }
        None => version.to_string(),
    };
    println!("cargo:rustc-env=RECIPES_VERSION={long}");
}
