//! `recipes list`: the recipes of one language, as text or JSON.

use crate::exit;
use crate::model::{chain, declared_fixture, index, Recipe};
use crate::report::Format;
use crate::workspace::Workspace;

use super::{count, print_problems};

pub fn list(ws: &Workspace, lang: &str, format: Format) -> anyhow::Result<i32> {
    let (book, mut problems) = ws.load(lang)?;
    print_problems(&mut problems, false);
    let recipes: Vec<&Recipe> = book.pages.iter().flat_map(|p| &p.recipes).collect();
    let all = index(recipes.iter().copied());
    // The fixture a recipe runs on (a recipe it needs may declare it).
    let fixture = |r: &Recipe| declared_fixture(&chain(r, &all)).to_string();
    match format {
        Format::Json => {
            let json: Vec<serde_json::Value> = recipes
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id,
                        "lang": r.lang,
                        "page": r.page,
                        "line": r.location.line,
                        "fixture": fixture(r),
                        "steps": r.steps.iter().map(|s| serde_json::json!({
                            "line": s.location.line,
                            "kind": s.kind.as_str(),
                            "syntax": s.syntax,
                            "attrs": s.attrs,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Format::Human => {
            let width = recipes.iter().map(|r| r.id.len()).max().unwrap_or(0);
            for r in &recipes {
                println!(
                    "{:width$}  {}:{}  fixture={}  {}",
                    r.id,
                    r.page,
                    r.location.line,
                    fixture(r),
                    count(r.steps.len(), "step"),
                );
            }
        }
    }
    Ok(exit::OK)
}
