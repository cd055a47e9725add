//! What the site shows of where results were proven: the provenance and
//! the per-fixture row of results added to each recipe's badge, and a
//! generated page per language ("Où ces recettes ont été prouvées" /
//! "Where these recipes were proven") listing the environments of the
//! current results. Kept apart from the preprocessor's other work.

use std::collections::BTreeMap;

use mdbook_preprocessor::book::Chapter;

use crate::model::Recipe;
use crate::status::{code_hash, Entry, Store};

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
        let label = format!(
            "{} {}",
            if lang == "fr" { "par" } else { "per" },
            fixture_word(lang)
        );
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
            "<span class=\"recipe-matrix\" data-recipe=\"{}\">{label}{}: {}</span>",
            recipe.id,
            if lang == "fr" { "\u{a0}" } else { "" },
            cells.join(" ")
        ));
    }
    html
}

/// An empty or absent value, as the site says it.
fn or_none(value: &str, fr: bool) -> String {
    if value.is_empty() || value == "none" {
        (if fr { "aucun" } else { "none" }).to_string()
    } else {
        value.to_string()
    }
}

/// The word for a fixture on the site: "rootfs de test" in French.
pub fn fixture_word(lang: &str) -> &'static str {
    if lang == "fr" {
        "rootfs de test"
    } else {
        "fixture"
    }
}

/// A link from the generated page to a recipe's badge on its page.
fn recipe_link(recipe: &Recipe) -> String {
    let page = recipe.page.replace('\\', "/");
    let html = page.strip_suffix(".md").unwrap_or(&page);
    format!(
        "<a href=\"{html}.html#recipe-{id}\"><code>{id}</code></a>",
        id = recipe.id
    )
}

/// The generated page: one table, an environment per row (fixture, its
/// definition's digest, distribution, kernel, LXC, cgroup, security
/// modules, booted host, tool) with the recipes whose current result was
/// proven there, linked to their badges.
pub fn page(store: &Store, lang: &str, recipes: &[&Recipe]) -> Chapter {
    let fr = lang == "fr";
    let envs = environments(store, recipes, fr);
    let mut md = format!("# {}\n\n", title(lang));
    md.push_str(if fr {
        "Chaque résultat actuel des recettes, groupé par l'environnement où il a été obtenu : le rootfs de test et l'empreinte de sa définition, la distribution, le noyau, la version de LXC, la hiérarchie des cgroups, les modules de sécurité, l'hôte démarré où les étapes ont tourné et l'outil.\n\n"
    } else {
        "Every current result of the recipes, grouped by the environment it was obtained in: the fixture and its definition's digest, the distribution, the kernel, the LXC version, the cgroup layout, the security modules, the booted host the steps ran in, and the tool.\n\n"
    });
    if envs.is_empty() {
        md.push_str(if fr {
            "Aucun résultat pour l'instant : `recipes test` en produit.\n"
        } else {
            "No results yet: `recipes test` makes them.\n"
        });
    } else {
        md.push_str(&table(&envs, fr));
    }
    let mut chapter = Chapter::new(title(lang), md, PAGE, Vec::new());
    // Generated: no file on disk.
    chapter.source_path = None;
    chapter
}

/// The recipes' current results by environment: the row's values (as
/// [`table`] heads them), then each result as a linked badge.
fn environments(
    store: &Store,
    recipes: &[&Recipe],
    fr: bool,
) -> BTreeMap<Vec<String>, Vec<String>> {
    let mut envs: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    for recipe in recipes {
        for (_, entry) in store.results(&recipe.id) {
            let state = state(entry, recipe);
            if state == "stale" {
                continue;
            }
            let p = &entry.provenance;
            let fixture = entry.fixture.split('@').next().unwrap_or_default();
            let key = [
                fixture,
                &p.fixture_digest,
                &p.distro,
                &p.kernel,
                &p.lxc,
                &p.cgroup,
                &p.lsm.join(", "),
                &p.host,
                &p.tool,
            ]
            .map(|v| or_none(v, fr))
            .to_vec();
            envs.entry(key).or_default().push(format!(
                "<span class=\"recipe-{state}\" title=\"{}\">{} {}</span>",
                escape(&entry.date),
                icon(state),
                recipe_link(recipe)
            ));
        }
    }
    envs
}

/// The HTML table of [`environments`], one row each.
fn table(envs: &BTreeMap<Vec<String>, Vec<String>>, fr: bool) -> String {
    let heads: [&str; 10] = if fr {
        [
            "rootfs de test",
            "empreinte",
            "distribution",
            "noyau",
            "lxc",
            "cgroup",
            "lsm",
            "hôte",
            "outil",
            "recettes",
        ]
    } else {
        [
            "fixture", "digest", "distro", "kernel", "lxc", "cgroup", "lsm", "host", "tool",
            "recipes",
        ]
    };
    let mut md = String::from("<table class=\"recipes-envs\">\n<thead><tr>");
    for head in heads {
        md.push_str(&format!("<th>{head}</th>"));
    }
    md.push_str("</tr></thead>\n<tbody>\n");
    for (key, results) in envs {
        md.push_str(&format!("<tr data-fixture=\"{}\">", escape(&key[0])));
        for (head, value) in heads.iter().zip(key) {
            md.push_str(&format!("<td data-key=\"{head}\">{}</td>", escape(value)));
        }
        md.push_str(&format!(
            "<td data-key=\"{}\">{}</td></tr>\n",
            heads[9],
            results.join("<br>")
        ));
    }
    md.push_str("</tbody>\n</table>\n");
    md
}
