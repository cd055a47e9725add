//! What the site shows of where results were proven: the provenance and
//! the per-fixture row of results added to each recipe's badge, and a
//! generated page per language ("Où ces recettes ont été prouvées" /
//! "Where these recipes were proven") listing the environments of the
//! current results. Kept apart from the preprocessor's other work.

use std::collections::BTreeMap;

use mdbook_preprocessor::book::Chapter;

use super::status::{code_hash, Entry, Store};
use crate::model::Recipe;

/// The generated page's file name in the site.
pub const PAGE: &str = "proven.md";

fn title(lang: &str) -> &'static str {
    if lang == "fr" {
        "Où ces recettes ont été prouvées"
    } else {
        "Where these recipes were proven"
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A result's state for the site: its status, or `stale` when the recipe's
/// code changed since it ran.
pub fn state<'a>(entry: &'a Entry, recipe: &Recipe) -> &'a str {
    if entry.hash != code_hash(recipe) {
        "stale"
    } else {
        entry.status.as_str()
    }
}

fn icon(state: &str) -> &'static str {
    match state {
        "passed" => "✔",
        "failed" | "timed-out" | "error" => "✘",
        _ => "●",
    }
}

/// `Debian 12.8 · kernel 6.1.0 · cgroup v2`.
fn short(entry: &Entry) -> String {
    let p = &entry.provenance;
    let mut parts = Vec::new();
    if !p.distro.is_empty() && p.distro != "none" {
        parts.push(p.distro.clone());
    }
    if !p.kernel.is_empty() {
        parts.push(format!("kernel {}", p.kernel));
    }
    if !p.cgroup.is_empty() {
        parts.push(format!("cgroup {}", p.cgroup));
    }
    parts.join(" · ")
}

/// What the badge adds for a recipe: where its result on the declared
/// fixture was proven, and a row with its result on every fixture it ran
/// on (a `--fixture` matrix).
pub fn badge_extra(store: &Store, recipe: &Recipe, declared: &str, lang: &str) -> String {
    let mut html = String::new();
    if let Some(entry) = store.get(&recipe.id, declared) {
        let p = &entry.provenance;
        if !p.kernel.is_empty() {
            html.push_str(&format!(
                "<span class=\"recipe-where\" data-kernel=\"{}\" data-lxc=\"{}\" data-distro=\"{}\" data-cgroup=\"{}\" data-lsm=\"{}\" data-fixture-digest=\"{}\" data-tool=\"{}\" title=\"lxc {}; lsm {}; {}\"><a href=\"{}\">{}</a></span>",
                escape(&p.kernel),
                escape(&p.lxc),
                escape(&p.distro),
                escape(&p.cgroup),
                escape(&p.lsm.join(",")),
                escape(&p.fixture_digest),
                escape(&p.tool),
                escape(&p.lxc),
                escape(&p.lsm.join(",")),
                escape(&p.tool),
                PAGE.replace(".md", ".html"),
                escape(&short(entry)),
            ));
        }
    }
    let results: Vec<(&String, &Entry)> = store.results(&recipe.id).collect();
    if !results.is_empty() {
        let label = if lang == "fr" {
            "par fixture"
        } else {
            "per fixture"
        };
        let cells: Vec<String> = results
            .iter()
            .map(|(fixture, entry)| {
                let state = state(entry, recipe);
                format!(
                    "<span class=\"recipe-cell recipe-{state}\" data-fixture=\"{f}\" data-status=\"{state}\" title=\"{}\">{} {f}</span>",
                    escape(&short(entry)),
                    icon(state),
                    f = escape(fixture),
                )
            })
            .collect();
        html.push_str(&format!(
            "<span class=\"recipe-matrix\" data-recipe=\"{}\">{label}: {}</span>",
            recipe.id,
            cells.join(" ")
        ));
    }
    html
}

/// The generated page: one row per environment (fixture, distribution,
/// kernel, LXC, cgroup, security modules, tool) with the recipes whose
/// current result was proven there.
pub fn page(store: &Store, lang: &str, recipes: &[&Recipe]) -> Chapter {
    let fr = lang == "fr";
    let mut envs: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    for recipe in recipes {
        for (_, entry) in store.results(&recipe.id) {
            let state = state(entry, recipe);
            if state == "stale" {
                continue;
            }
            let p = &entry.provenance;
            let key = vec![
                entry.fixture.clone(),
                p.fixture_digest.clone(),
                p.distro.clone(),
                p.kernel.clone(),
                p.lxc.clone(),
                p.cgroup.clone(),
                p.lsm.join(", "),
                p.tool.clone(),
            ];
            envs.entry(key).or_default().push(format!(
                "{} `{}` ({}, {})",
                icon(state),
                recipe.id,
                state,
                entry.date
            ));
        }
    }
    let mut md = format!("# {}\n\n", title(lang));
    md.push_str(if fr {
        "Chaque résultat actuel des recettes, groupé par l'environnement où il a été obtenu : la fixture et l'empreinte de sa définition, la distribution, le noyau, la version de LXC, la hiérarchie des cgroups, les modules de sécurité et l'outil.\n\n"
    } else {
        "Every current result of the recipes, grouped by the environment it was obtained in: the fixture and its definition's digest, the distribution, the kernel, the LXC version, the cgroup layout, the security modules and the tool.\n\n"
    });
    if envs.is_empty() {
        md.push_str(if fr {
            "Aucun résultat pour l'instant : `recipes test` en produit.\n"
        } else {
            "No results yet: `recipes test` makes them.\n"
        });
    }
    let heads = if fr {
        [
            "fixture",
            "empreinte",
            "distribution",
            "noyau",
            "lxc",
            "cgroup",
            "lsm",
            "outil",
        ]
    } else {
        [
            "fixture", "digest", "distro", "kernel", "lxc", "cgroup", "lsm", "tool",
        ]
    };
    for (n, (key, results)) in envs.iter().enumerate() {
        md.push_str(&format!(
            "## {} {}: `{}`\n\n",
            if fr { "Environnement" } else { "Environment" },
            n + 1,
            key[0]
        ));
        md.push_str(&format!(
            "<dl class=\"recipes-env\" data-fixture=\"{}\">\n",
            escape(&key[0])
        ));
        for (head, value) in heads.iter().zip(key) {
            md.push_str(&format!(
                "<dt>{head}</dt><dd data-key=\"{head}\">{}</dd>\n",
                escape(value)
            ));
        }
        md.push_str("</dl>\n\n");
        for line in results {
            md.push_str(&format!("- {line}\n"));
        }
        md.push('\n');
    }
    let mut chapter = Chapter::new(title(lang), md, PAGE, Vec::new());
    // Generated: no file on disk.
    chapter.source_path = None;
    chapter
}
