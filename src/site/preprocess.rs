//! The `recipes` mdBook preprocessor: a status badge before each recipe, a
//! link to the same page in the other language, and accent-folded copies of
//! the accented words of each section so that search finds `chaîne` when a
//! reader types `chaine` (mdBook's search does not fold accents).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mdbook_preprocessor::book::Book;
use mdbook_preprocessor::errors::Result;
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};
use pulldown_cmark::{Event, Parser, Tag};
use unicode_normalization::UnicodeNormalization;

use super::status::{code_hash, Store};
use crate::model::{chain, declared_fixture, index, Recipe, RecipeIndex};
use crate::parse::blocks::LineIndex;
use crate::parse::parse_page;

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
}

fn words(lang: &str) -> Words {
    if lang == "fr" {
        Words {
            recipe: "recette",
            run_it: "pour la rejouer",
            on: "le",
            fixture: "fixture",
            states: [
                ("passed", "réussie"),
                ("failed", "en échec"),
                ("timed-out", "délai dépassé"),
                ("skipped", "sautée"),
                ("error", "erreur"),
                ("stale", "périmée (code modifié depuis le dernier test)"),
                ("untested", "pas encore testée"),
            ],
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
        for (line, folded) in folded_sections(content) {
            inserts.push((
                line,
                format!("\n<div class=\"recipes-fold\" hidden>\n\n{folded}\n\n</div>\n"),
            ));
        }
        inserts.sort_by_key(|(line, _)| std::cmp::Reverse(*line));
        for (line, text) in inserts {
            lines.insert(line.min(lines.len()), text);
        }
        let body = super::steps::present(&lines.join("\n"), &self.lang);
        format!("{}\n\n{}\n", self.switch(path, source), body)
    }

    fn badge(&self, recipe: &Recipe, all: &RecipeIndex) -> String {
        let w = words(&self.lang);
        let entry = self.store.recipes.get(&recipe.id);
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
        let fixture = entry.map_or_else(
            || declared_fixture(&chain(recipe, all)).to_string(),
            |e| e.fixture.clone(),
        );
        let when = match entry {
            Some(e) => format!(" {} {}", w.on, e.date),
            None => String::new(),
        };
        // French typography puts a (non-breaking) space before a colon.
        let colon = if self.lang == "fr" { "\u{a0}:" } else { ":" };
        format!(
            "<div class=\"recipe-badge recipe-{state}\" data-recipe=\"{id}\" data-status=\"{state}\"><span class=\"recipe-state\">{icon} {recipe_word} <code>{id}</code>{colon} {label}</span><span class=\"recipe-when\">{when}, {fixture_word} <code>{fixture}</code></span><span class=\"recipe-run\">{run_it}{colon} <code>recipes run {id}</code></span></div>",
            id = recipe.id,
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
                format!(
                    "<a class=\"lang-switch-link\" href=\"{up}{}{target}\" hreflang=\"{other}\" lang=\"{other}\">{}</a>",
                    self.layout.prefix(other),
                    language_name(other)
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

/// For each section of a page (up to the next heading, or the end), the line
/// before which to insert the folded forms of its accented words.
fn folded_sections(content: &str) -> Vec<(usize, String)> {
    let index = LineIndex::new(content);
    let mut bounds: Vec<(usize, usize)> = Vec::new(); // (byte offset, line index)
    for (event, range) in Parser::new(content).into_offset_iter() {
        if let Event::Start(Tag::Heading { .. }) = event {
            bounds.push((range.start, index.line(range.start) - 1));
        }
    }
    bounds.push((content.len(), content.lines().count()));
    let mut out = Vec::new();
    let mut start = 0;
    for (offset, line) in bounds {
        let words = fold_words(&content[start..offset]);
        if !words.is_empty() {
            out.push((line, words));
        }
        start = offset;
    }
    out
}

/// The accented words of `text`, lower-cased without their accents.
pub fn fold_words(text: &str) -> String {
    let mut folded = BTreeSet::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_ascii() || word.is_empty() {
            continue;
        }
        let plain: String = word
            .nfd()
            .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
            .collect::<String>()
            .replace(['œ', 'Œ'], "oe")
            .replace(['æ', 'Æ'], "ae")
            .to_lowercase();
        if plain != word.to_lowercase() {
            folded.insert(plain);
        }
    }
    folded.into_iter().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_only_accented_words() {
        assert_eq!(
            fold_words("Une chaîne, déjà vue; plain text, Œuvre."),
            "chaine deja oeuvre"
        );
        assert_eq!(fold_words("nothing here"), "");
    }

    #[test]
    fn sections_end_before_each_heading() {
        let text = "# Été\n\nun été\n\n## Deux\n\nrien\n\n## Trois\n\nchaîne\n";
        let sections = folded_sections(text);
        assert_eq!(
            sections,
            vec![(4, "ete".to_string()), (11, "chaine".to_string())]
        );
    }

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
