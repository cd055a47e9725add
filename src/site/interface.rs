//! The French site's interface in French. mdBook's templates and scripts
//! speak English (the theme menu, the search bar, the page arrows, the
//! keyboard help, the copy button); mdBook has no translations, so the
//! French build's pages and scripts are rewritten after the build, string
//! by string. Only these exact strings change: a page's own text is never
//! touched. Pure, but for [`french`], which rewrites the files.

use std::path::Path;

/// Attribute values (`title`, `aria-label`, `placeholder`) and their French.
const ATTRIBUTES: &[(&str, &str)] = &[
    ("Change theme", "Changer de thème"),
    ("Git repository", "Dépôt Git"),
    ("Next chapter", "Chapitre suivant"),
    ("Previous chapter", "Chapitre précédent"),
    ("Page navigation", "Navigation entre les chapitres"),
    ("Print this book", "Imprimer le livre"),
    ("Suggest an edit", "Proposer une modification"),
    ("Table of contents", "Table des matières"),
    (
        "Toggle Table of Contents",
        "Afficher ou masquer la table des matières",
    ),
    ("Toggle Searchbar", "Afficher ou masquer la recherche"),
    ("Themes", "Thèmes"),
    ("Search this book ...", "Rechercher dans le livre…"),
    ("Search (`/`)", "Rechercher (`/`)"),
];

/// Text between tags (the theme menu, the keyboard help).
const TEXTS: &[(&str, &str)] = &[
    (
        "id=\"mdbook-theme-default_theme\">Auto<",
        "id=\"mdbook-theme-default_theme\">Automatique<",
    ),
    (
        "id=\"mdbook-theme-light\">Light<",
        "id=\"mdbook-theme-light\">Clair<",
    ),
    (
        "id=\"mdbook-theme-rust\">Rust<",
        "id=\"mdbook-theme-rust\">Rouille<",
    ),
    (
        "id=\"mdbook-theme-coal\">Coal<",
        "id=\"mdbook-theme-coal\">Charbon<",
    ),
    (
        "id=\"mdbook-theme-navy\">Navy<",
        "id=\"mdbook-theme-navy\">Marine<",
    ),
    (
        "\"mdbook-help-title\">Keyboard shortcuts<",
        "\"mdbook-help-title\">Raccourcis clavier<",
    ),
    (
        "Press <kbd>←</kbd> or <kbd>→</kbd> to navigate between chapters",
        "Appuyez sur <kbd>←</kbd> ou <kbd>→</kbd> pour changer de chapitre",
    ),
    (
        "Press <kbd>S</kbd> or <kbd>/</kbd> to search in the book",
        "Appuyez sur <kbd>S</kbd> ou <kbd>/</kbd> pour chercher dans le livre",
    ),
    (
        "Press <kbd>?</kbd> to show this help",
        "Appuyez sur <kbd>?</kbd> pour afficher cette aide",
    ),
    (
        "Press <kbd>Esc</kbd> to hide this help",
        "Appuyez sur <kbd>Échap</kbd> pour masquer cette aide",
    ),
];

/// Strings of mdBook's scripts. The search's headers read as the theme's
/// own translation writes them (`book/theme/head.hbs`, which still serves
/// a plain `mdbook build`).
const SCRIPTS: &[(&str, &str)] = &[
    ("'Copy to clipboard'", "'Copier dans le presse-papiers'"),
    ("'Copied!'", "'Copié\u{a0}!'"),
    (
        "count + ' search result for \\'' + searchterm + '\\':'",
        "count + ' résultat pour «\u{a0}' + searchterm + '\u{a0}»'",
    ),
    (
        "'No search results for \\'' + searchterm + '\\'.'",
        "'Aucun résultat pour «\u{a0}' + searchterm + '\u{a0}»'",
    ),
    (
        "count + ' search results for \\'' + searchterm + '\\':'",
        "count + ' résultats pour «\u{a0}' + searchterm + '\u{a0}»'",
    ),
];

/// One page of the French build, its interface in French.
pub fn french_page(html: &str) -> String {
    let mut page = html.to_string();
    for (en, fr) in ATTRIBUTES {
        for attribute in ["title", "aria-label", "placeholder"] {
            page = page.replace(
                &format!("{attribute}=\"{en}\""),
                &format!("{attribute}=\"{fr}\""),
            );
        }
    }
    for (en, fr) in TEXTS {
        page = page.replace(en, fr);
    }
    page
}

/// One script of the French build, its messages in French.
pub fn french_script(js: &str) -> String {
    let mut script = js.to_string();
    for (en, fr) in SCRIPTS {
        script = script.replace(en, fr);
    }
    script
}

/// Rewrites the pages and scripts of a French build in `dir` (not its
/// subfolders, where the other languages are).
pub fn french(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let rewrite: fn(&str) -> String = match path.extension().and_then(|e| e.to_str()) {
            Some("html") => french_page,
            Some("js") => french_script,
            _ => continue,
        };
        let text = std::fs::read_to_string(&path)?;
        let done = rewrite(&text);
        if done != text {
            std::fs::write(&path, done)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interface_is_french_and_the_text_is_untouched() {
        let page = r#"<button title="Change theme" aria-label="Change theme"></button><li>Light</li><button role="menuitem" class="theme" id="mdbook-theme-light">Light</button><input placeholder="Search this book ..."><p>Light and Themes stay in prose.</p>"#;
        assert_eq!(
            french_page(page),
            r#"<button title="Changer de thème" aria-label="Changer de thème"></button><li>Light</li><button role="menuitem" class="theme" id="mdbook-theme-light">Clair</button><input placeholder="Rechercher dans le livre…"><p>Light and Themes stay in prose.</p>"#
        );
        let js = "return 'No search results for \\'' + searchterm + '\\'.';";
        assert_eq!(
            french_script(js),
            "return 'Aucun résultat pour «\u{a0}' + searchterm + '\u{a0}»';"
        );
    }
}
