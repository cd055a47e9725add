//! The `recipes` mdBook preprocessor: a status badge before each recipe, a
//! link to the same page in the other language, and French typography on
//! French pages. (Search folds accents in its index: see `search`.)

use std::path::{Path, PathBuf};

use mdbook_preprocessor::book::Book;
use mdbook_preprocessor::errors::Result;
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};

use crate::model::{
    chain, declared_fixture, declared_host, index, result_key, Recipe, RecipeIndex,
};
use crate::parse::parse_page;
use crate::status::{code_hash, Store};

/// Where each language of the site lives.
#[derive(Debug, Clone)]
pub struct SiteLayout {
    /// Languages in site order; the first is at the site's root, the others
    /// in a folder named after them.
    pub langs: Vec<String>,
    /// The book folder (`book/`), to see which pages exist in each language.
    pub book_dir: PathBuf,
}

impl SiteLayout {
    fn prefix(&self, lang: &str) -> String {
        if self.langs.first().map(String::as_str) == Some(lang) {
            String::new()
        } else {
            format!("{lang}/")
        }
    }
}

pub struct RecipesPreprocessor {
    pub lang: String,
    pub layout: SiteLayout,
    pub store: Store,
}

impl Preprocessor for RecipesPreprocessor {
    fn name(&self) -> &str {
        "recipes"
    }

    fn run(&self, _ctx: &PreprocessorContext, mut book: Book) -> Result<Book> {
        // Recipes of the whole language, for `needs` chains.
        let mut pages: Vec<(PathBuf, Vec<Recipe>)> = Vec::new();
        for chapter in book.chapters() {
            if let Some(source) = &chapter.source_path {
                let rel = source.to_string_lossy().replace('\\', "/");
                let (recipes, _) = parse_page(source, &rel, &self.lang, &chapter.content);
                pages.push((source.clone(), recipes));
            }
        }
        let all = index(pages.iter().flat_map(|(_, r)| r));
        book.for_each_chapter_mut(|chapter| {
            let (Some(path), Some(source)) = (chapter.path.clone(), chapter.source_path.clone())
            else {
                return;
            };
            let recipes = pages
                .iter()
                .find(|(s, _)| *s == source)
                .map(|(_, r)| r.clone())
                .unwrap_or_default();
            chapter.content = self.decorate(&chapter.content, &path, &source, &recipes, &all);
        });
        let mut proven = super::proven::page(
            &self.store,
            &self.lang,
            &all.values().copied().collect::<Vec<_>>(),
        );
        // Generated in every language: the switch links to its twin.
        let page = Path::new(super::proven::PAGE);
        let switch = self
            .switch(page, page)
            .replace("index.html", &super::proven::PAGE.replace(".md", ".html"));
        proven.content = format!("{switch}\n\n{}", proven.content);
        if self.lang == "fr" {
            proven.content = super::typography::french(&proven.content);
        }
        book.push_item(proven);
        Ok(book)
    }

    fn supports_renderer(&self, renderer: &str) -> Result<bool> {
        Ok(renderer == "html")
    }
}

/// Text a language uses for the site's own words.
struct Words {
    recipe: &'static str,
    run_it: &'static str,
    on: &'static str,
    fixture: &'static str,
    states: [(&'static str, &'static str); 7],
    /// "unstable: N of its last M runs failed", from (N, M).
    unstable: fn(usize, usize) -> String,
}

fn words(lang: &str) -> Words {
    if lang == "fr" {
        Words {
            recipe: "recette",
            run_it: "pour la rejouer",
            on: "le",
            fixture: "rootfs de test",
            states: [
                ("passed", "réussie"),
                ("failed", "en échec"),
                ("timed-out", "délai dépassé"),
                ("skipped", "sautée"),
                ("error", "erreur"),
                ("stale", "périmée (code modifié depuis le dernier test)"),
                ("untested", "pas encore testée"),
            ],
            unstable: |failed, runs| {
                let runs = if runs == 1 {
                    "sa dernière exécution".to_string()
                } else {
                    format!("ses {runs} dernières exécutions")
                };
                let failed = if failed == 1 {
                    "1 échec".to_string()
                } else {
                    format!("{failed} échecs")
                };
                format!("instable\u{a0}: {failed} sur {runs}")
            },
        }
    } else {
        Words {
            recipe: "recipe",
            run_it: "to run it",
            on: "on",
            fixture: "fixture",
            states: [
                ("passed", "passed"),
                ("failed", "failed"),
                ("timed-out", "timed out"),
                ("skipped", "skipped"),
                ("error", "error"),
                ("stale", "stale (code changed since it was tested)"),
                ("untested", "not tested yet"),
            ],
            unstable: |failed, runs| format!("unstable: {failed} of its last {runs} runs failed"),
        }
    }
}

/// The name of a language in that language.
fn language_name(lang: &str) -> &str {
    match lang {
        "fr" => "Français",
        "en" => "English",
        other => other,
    }
}

impl RecipesPreprocessor {
    fn decorate(
        &self,
        content: &str,
        path: &Path,
        source: &Path,
        recipes: &[Recipe],
        all: &RecipeIndex,
    ) -> String {
        let mut lines: Vec<String> = content.lines().map(str::to_string).collect();
        let mut inserts: Vec<(usize, String)> = Vec::new();
        for recipe in recipes {
            let at = recipe.location.line.saturating_sub(1);
            let prefix = indentation(lines.get(at).map(String::as_str).unwrap_or(""));
            inserts.push((at, format!("{prefix}{}\n{prefix}", self.badge(recipe, all))));
        }
        inserts.sort_by_key(|(line, _)| std::cmp::Reverse(*line));
        for (line, text) in inserts {
            lines.insert(line.min(lines.len()), text);
        }
        let body = super::steps::present(&lines.join("\n"), &self.lang);
        let page = format!("{}\n\n{}\n", self.switch(path, source), body);
        if self.lang == "fr" {
            super::typography::french(&page)
        } else {
            page
        }
    }

    fn badge(&self, recipe: &Recipe, all: &RecipeIndex) -> String {
        let w = words(&self.lang);
        let chain = chain(recipe, all);
        let fixture = declared_fixture(&chain);
        let key = result_key(fixture, declared_host(&chain));
        let declared = key.as_str();
        let entry = self.store.get(&recipe.id, declared);
        let state = match entry {
            None => "untested",
            Some(e) if e.hash != code_hash(recipe) => "stale",
            Some(e) => e.status.as_str(),
        };
        let label = w
            .states
            .iter()
            .find(|(k, _)| *k == state)
            .map_or(state, |(_, v)| v);
        let icon = match state {
            "passed" => "✔",
            "failed" | "timed-out" | "error" => "✘",
            _ => "●",
        };
        let fixture = declared;
        let when = match entry {
            Some(e) => format!(" {} {}", w.on, e.date),
            None => String::new(),
        };
        let unstable = entry
            .filter(|e| e.hash == code_hash(recipe))
            .and_then(|e| e.unstable())
            .map(|(failed, runs)| {
                format!(
                    "<span class=\"recipe-unstable\" data-failed=\"{failed}\" data-runs=\"{runs}\">{}</span>",
                    (w.unstable)(failed, runs)
                )
            })
            .unwrap_or_default();
        // French typography puts a (non-breaking) space before a colon.
        let colon = if self.lang == "fr" { "\u{a0}:" } else { ":" };
        format!(
            "<div class=\"recipe-badge recipe-{state}\" data-recipe=\"{id}\" data-status=\"{state}\" id=\"recipe-{id}\"><span class=\"recipe-state\">{icon} {recipe_word} <code>{id}</code>{colon} {label}</span>{unstable}<span class=\"recipe-when\">{when}, {fixture_word} <code>{fixture}</code></span><span class=\"recipe-run\">{run_it}{colon} <code>recipes run {id}</code></span>{extra}</div>",
            id = recipe.id,
            extra = super::proven::badge_extra(&self.store, recipe, declared, &self.lang),
            recipe_word = w.recipe,
            fixture_word = w.fixture,
            run_it = w.run_it,
        )
    }

    /// A link to the same page in the other language(s).
    fn switch(&self, path: &Path, source: &Path) -> String {
        let depth = path.components().count().saturating_sub(1);
        let up = "../".repeat(depth)
            + &"../".repeat(usize::from(!self.layout.prefix(&self.lang).is_empty()));
        let html = path
            .with_extension("html")
            .to_string_lossy()
            .replace('\\', "/");
        let links: Vec<String> = self
            .layout
            .langs
            .iter()
            .filter(|l| **l != self.lang)
            .map(|other| {
                let twin = self.layout.book_dir.join(other).join("src").join(source);
                let target = if twin.exists() { html.clone() } else { "index.html".to_string() };
                // The name is drawn by CSS from `data-label`: text in the
                // page would show up in search teasers.
                format!(
                    "<a class=\"lang-switch-link\" href=\"{up}{}{target}\" hreflang=\"{other}\" lang=\"{other}\" aria-label=\"{name}\" data-label=\"{name}\"></a>",
                    self.layout.prefix(other),
                    name = language_name(other)
                )
            })
            .collect();
        format!("<nav class=\"lang-switch\">{}</nav>", links.join(" "))
    }
}

/// The leading indentation and block-quote markers of a line.
fn indentation(line: &str) -> String {
    line.chars()
        .take_while(|c| c.is_whitespace() || *c == '>')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_links_to_the_twin_page() {
        let dir = tempfile::tempdir().unwrap();
        for lang in ["fr", "en"] {
            std::fs::create_dir_all(dir.path().join(lang).join("src/sub")).unwrap();
            std::fs::write(dir.path().join(lang).join("src/sub/page.md"), "").unwrap();
        }
        let layout = SiteLayout {
            langs: vec!["fr".into(), "en".into()],
            book_dir: dir.path().into(),
        };
        let fr = RecipesPreprocessor {
            lang: "fr".into(),
            layout: layout.clone(),
            store: Store::default(),
        };
        let en = RecipesPreprocessor {
            lang: "en".into(),
            layout,
            store: Store::default(),
        };
        let page = Path::new("sub/page.md");
        assert!(fr
            .switch(page, page)
            .contains("href=\"../en/sub/page.html\""));
        assert!(en
            .switch(page, page)
            .contains("href=\"../../sub/page.html\""));
        let missing = Path::new("gone.md");
        assert!(fr
            .switch(missing, missing)
            .contains("href=\"en/index.html\""));
    }
}
