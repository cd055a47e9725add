//! The plan stage (DESIGN §3): from what the user asked for (ids, every
//! recipe, the recipes of changed pages; a partition; fixtures to run on)
//! to an explicit [`Plan`]: which recipes run, each after which chain of
//! recipes it needs, on which fixture, with which host commands. Pure: the
//! caller reads the book and asks git; nothing here runs or writes, so the
//! plan is printed as it is by `--dry-run` and unit-tested.

pub mod packages;
mod show;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::model::{chain, declared_fixture, Limits, Recipe, RecipeIndex, Requirement};
pub use packages::{needs_of, HostCommand};

/// Which recipes the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// These ids, in this order.
    Ids(Vec<String>),
    /// Every recipe, in book order.
    All,
    /// The recipes of these pages (relative to `src/`) or on these fixtures,
    /// and the recipes that need them, in book order.
    Changed {
        pages: BTreeSet<String>,
        fixtures: BTreeSet<String>,
    },
}

/// The K-th of N deterministic shares of the recipes (`--partition K/N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// 1-based.
    pub k: usize,
    pub n: usize,
}

impl Partition {
    /// Whether the recipe at `index` (0-based, in book order) is in this share.
    pub fn contains(self, index: usize) -> bool {
        index % self.n == self.k - 1
    }
}

/// A partition that is not `K/N` with 1 <= K <= N.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid partition `{0}` (use K/N with 1 <= K <= N, like 2/4)")]
pub struct PartitionError(pub String);

impl FromStr for Partition {
    type Err = PartitionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || PartitionError(text.to_string());
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let k: usize = k.parse().map_err(|_| bad())?;
        let n: usize = n.parse().map_err(|_| bad())?;
        if k == 0 || k > n {
            return Err(bad());
        }
        Ok(Partition { k, n })
    }
}

/// What to plan: which recipes, which share of them, on which fixtures.
#[derive(Debug, Clone)]
pub struct Selection {
    pub pick: Pick,
    pub partition: Option<Partition>,
    /// Fixtures to run each recipe on instead of the one it declares; with
    /// several, each recipe runs on each (a matrix). Empty: as declared.
    pub fixtures: Vec<String>,
    /// Booted hosts to run each recipe's steps in (`--host`), a matrix
    /// dimension like `fixtures`. Empty: as declared (`host=`), if at all.
    pub hosts: Vec<String>,
}

/// Where a run's fixture comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FixtureSource {
    /// The recipe's own `fixture=`, or that of a recipe it needs.
    Declared,
    /// `--fixture` on the command line.
    Override,
}

/// One recipe to run on one fixture.
#[derive(Debug, Clone)]
pub struct RecipeRun<'b> {
    pub recipe: &'b Recipe,
    /// The recipes it needs, deepest first, then the recipe itself: all run
    /// in one environment, in this order.
    pub chain: Vec<&'b Recipe>,
    pub fixture: String,
    pub fixture_source: FixtureSource,
    /// What the chain requires of the machine, sorted.
    pub requires: Vec<Requirement>,
    /// Host commands the chain's steps call, with their packages.
    pub host_commands: Vec<HostCommand>,
    /// Which attempt this is, from 1 (`--repeat`).
    pub attempt: u32,
    /// The booted host fixture the steps run in (`host=`, `--host`).
    pub host: Option<String>,
    /// The sandbox's limits: the highest the chain asks for (`pids=`,
    /// `memory=`), or the defaults.
    pub limits: Limits,
    /// The sandbox's share of busy processors, set by `recipes test`'s and
    /// `run`'s schedule (`commands::run`; see [`crate::model::CPU_WEIGHT`]).
    pub cpu_weight: u16,
    /// Where the fixture's tree is, as the steps see it (`at=`, the last
    /// the chain declares); with a booted host, where the fixture appears
    /// inside the host.
    pub at: Option<String>,
    /// The host's network instead of a private one (`net=host` anywhere in
    /// the chain).
    pub net_host: bool,
}

impl RecipeRun<'_> {
    /// The ids of the recipes that run before this one.
    pub fn after(&self) -> impl Iterator<Item = &str> {
        self.chain[..self.chain.len() - 1]
            .iter()
            .map(|r| r.id.as_str())
    }
}

/// What a run will do, decided before anything runs.
#[derive(Debug, Clone)]
pub struct Plan<'b> {
    pub lang: String,
    pub runs: Vec<RecipeRun<'b>>,
}

impl<'b> Plan<'b> {
    /// Fixtures with a base to prepare (every fixture but `empty`, the
    /// booted hosts included), sorted.
    pub fn fixtures(&self) -> BTreeSet<&str> {
        self.runs
            .iter()
            .flat_map(|r| std::iter::once(r.fixture.as_str()).chain(r.host.as_deref()))
            .filter(|f| *f != crate::model::EMPTY_FIXTURE)
            .collect()
    }

    /// Every run `times` times, attempt after attempt (`--repeat`).
    pub fn repeated(&self, times: u32) -> Vec<RecipeRun<'b>> {
        (1..=times.max(1))
            .flat_map(|attempt| {
                self.runs.iter().map(move |run| RecipeRun {
                    attempt,
                    ..run.clone()
                })
            })
            .collect()
    }

    /// Every host command the plan calls, with its package, sorted.
    pub fn host_commands(&self) -> BTreeSet<HostCommand> {
        self.runs
            .iter()
            .flat_map(|r| r.host_commands.iter().copied())
            .collect()
    }
}

/// A selection that names what does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no recipe `{id}` in the `{lang}` book{suggestion}")]
    UnknownRecipe {
        id: String,
        lang: String,
        suggestion: Suggestion,
    },
    #[error("unknown fixture `{name}`{suggestion}")]
    UnknownFixture {
        name: String,
        suggestion: Suggestion,
    },
}

/// Plans `selection` over the recipes of one book language: `ordered` in
/// book order, `all` by id; `known_fixtures` are the names `--fixture` may
/// take.
pub fn plan<'b>(
    lang: &str,
    ordered: &[&'b Recipe],
    all: &RecipeIndex<'b>,
    selection: &Selection,
    known_fixtures: &BTreeSet<String>,
) -> Result<Plan<'b>, PlanError> {
    let picked = pick(lang, ordered, all, selection)?;
    for name in selection.fixtures.iter().chain(&selection.hosts) {
        if !known_fixtures.contains(name) {
            return Err(PlanError::UnknownFixture {
                name: name.clone(),
                suggestion: Suggestion::new(name, known_fixtures.iter().map(String::as_str)),
            });
        }
    }
    Ok(Plan {
        lang: lang.to_string(),
        runs: picked
            .into_iter()
            .flat_map(|recipe| runs_of(recipe, all, selection))
            .collect(),
    })
}

/// The recipes `selection` asks for, in its order (ids) or the book's.
fn pick<'b>(
    lang: &str,
    ordered: &[&'b Recipe],
    all: &RecipeIndex<'b>,
    selection: &Selection,
) -> Result<Vec<&'b Recipe>, PlanError> {
    let in_share = |i: usize| selection.partition.is_none_or(|p| p.contains(i));
    Ok(match &selection.pick {
        Pick::Ids(ids) => ids
            .iter()
            .map(|id| {
                all.get(id.as_str())
                    .copied()
                    .ok_or_else(|| PlanError::UnknownRecipe {
                        id: id.clone(),
                        lang: lang.to_string(),
                        suggestion: Suggestion::new(id, all.keys().copied()),
                    })
            })
            .collect::<Result<_, _>>()?,
        Pick::All => ordered
            .iter()
            .enumerate()
            .filter(|(i, _)| in_share(*i))
            .map(|(_, r)| *r)
            .collect(),
        Pick::Changed { pages, fixtures } => {
            let touched = |r: &Recipe| {
                pages.contains(&r.page) || fixtures.contains(declared_fixture(&chain(r, all)))
            };
            // A recipe is re-run when it, or a recipe it needs, changed.
            ordered
                .iter()
                .filter(|r| chain(r, all).iter().any(|c| touched(c)))
                .enumerate()
                .filter(|(i, _)| in_share(*i))
                .map(|(_, r)| *r)
                .collect()
        }
    })
}

/// The runs of one recipe: its chain with everything a sandbox for it
/// needs, on each fixture and host of the matrix.
fn runs_of<'b>(
    recipe: &'b Recipe,
    all: &RecipeIndex<'b>,
    selection: &Selection,
) -> Vec<RecipeRun<'b>> {
    let chain = chain(recipe, all);
    let mut requires: Vec<Requirement> = chain
        .iter()
        .flat_map(|r| r.requires.iter().copied())
        .collect();
    requires.sort();
    requires.dedup();
    let fixtures: Vec<(String, FixtureSource)> = if selection.fixtures.is_empty() {
        vec![(
            declared_fixture(&chain).to_string(),
            FixtureSource::Declared,
        )]
    } else {
        selection
            .fixtures
            .iter()
            .map(|f| (f.clone(), FixtureSource::Override))
            .collect()
    };
    let hosts: Vec<Option<String>> = if selection.hosts.is_empty() {
        vec![chain.iter().rev().find_map(|r| r.host.clone())]
    } else {
        selection.hosts.iter().cloned().map(Some).collect()
    };
    let run = RecipeRun {
        recipe,
        host_commands: needs_of(&chain),
        limits: Limits::of_chain(&chain),
        cpu_weight: crate::model::CPU_WEIGHT,
        at: chain.iter().rev().find_map(|r| r.at.clone()),
        net_host: chain.iter().any(|r| r.net_host),
        chain,
        fixture: String::new(),
        fixture_source: FixtureSource::Declared,
        requires,
        attempt: 1,
        host: None,
    };
    let mut runs = Vec::new();
    for (fixture, fixture_source) in fixtures {
        for host in &hosts {
            runs.push(RecipeRun {
                fixture: fixture.clone(),
                fixture_source,
                host: host.clone(),
                ..run.clone()
            });
        }
    }
    runs
}

/// `; did you mean `a` or `b`?` for the closest names, or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Suggestion(Vec<String>);

impl Suggestion {
    pub fn new<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Suggestion {
        let mut scored: Vec<(f64, &str)> = candidates
            .map(|c| (strsim::jaro_winkler(word, c), c))
            .filter(|(score, _)| *score > 0.75)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        Suggestion(scored.iter().take(3).map(|(_, c)| c.to_string()).collect())
    }
}

impl fmt::Display for Suggestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = self.0.iter().map(|c| format!("`{c}`")).collect();
        write!(f, "; did you mean {}?", names.join(" or "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{index, EMPTY_FIXTURE};
    use crate::parse::parse_page;
    use std::path::Path;

    const BOOK: &str = "\
```sh recipe=base fixture=debian
ip link show
```

```sh recipe=web needs=base requires=root
echo web
```

```text recipe=web expect
web
```

```sh recipe=alone
true
```

```sh recipe=top needs=web requires=lxc
true
```
";

    fn recipes(page: &str) -> Vec<Recipe> {
        let (recipes, problems) = parse_page(Path::new("p.md"), "p.md", "fr", page);
        assert!(problems.is_empty(), "{problems:?}");
        recipes
    }

    fn known() -> BTreeSet<String> {
        ["debian", "trixie", EMPTY_FIXTURE]
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn ids(plan: &Plan) -> Vec<(String, String)> {
        plan.runs
            .iter()
            .map(|r| (r.recipe.id.clone(), r.fixture.clone()))
            .collect()
    }

    fn select(pick: Pick, partition: Option<&str>, fixtures: &[&str]) -> Selection {
        Selection {
            pick,
            partition: partition.map(|p| p.parse().unwrap()),
            fixtures: fixtures.iter().map(|f| f.to_string()).collect(),
            hosts: Vec::new(),
        }
    }

    fn plan_of<'b>(
        ordered: &[&'b Recipe],
        all: &RecipeIndex<'b>,
        selection: &Selection,
    ) -> Plan<'b> {
        plan("fr", ordered, all, selection, &known()).unwrap()
    }

    fn run_plan(selection: &Selection) -> Result<Vec<(String, String)>, PlanError> {
        let recipes = recipes(BOOK);
        let ordered: Vec<&Recipe> = recipes.iter().collect();
        let all = index(ordered.iter().copied());
        plan("fr", &ordered, &all, selection, &known()).map(|p| ids(&p))
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn chains_fixtures_requirements_and_host_commands() {
        let recipes = recipes(BOOK);
        let ordered: Vec<&Recipe> = recipes.iter().collect();
        let all = index(ordered.iter().copied());
        let selection = select(Pick::Ids(vec!["top".into()]), None, &[]);
        let plan = plan("fr", &ordered, &all, &selection, &known()).unwrap();
        let run = &plan.runs[0];
        assert_eq!(run.after().collect::<Vec<_>>(), ["base", "web"]);
        assert_eq!(run.fixture, "debian");
        assert_eq!(run.fixture_source, FixtureSource::Declared);
        assert_eq!(run.requires, [Requirement::Root, Requirement::Lxc]);
        assert_eq!(
            run.host_commands,
            [("ip", "iproute2"), ("lxc-start", "lxc")]
        );
        assert_eq!(plan.fixtures().into_iter().collect::<Vec<_>>(), ["debian"]);
        assert_eq!(run.limits, Limits::DEFAULT);
        assert_eq!((run.at.as_deref(), run.net_host), (None, false));
    }

    #[test]
    fn limits_at_and_the_network_come_from_the_whole_chain() {
        let recipes = recipes(
            "```sh recipe=a pids=100 memory=1G at=/srv/a net=host\ntrue\n```\n\n```sh recipe=b needs=a pids=50 memory=2G\ntrue\n```\n\n```sh recipe=c needs=b at=/srv/c\ntrue\n```\n",
        );
        let ordered: Vec<&Recipe> = recipes.iter().collect();
        let all = index(ordered.iter().copied());
        let selection = select(Pick::Ids(vec!["b".into(), "c".into()]), None, &[]);
        let plan = plan("fr", &ordered, &all, &selection, &known()).unwrap();
        let (b, c) = (&plan.runs[0], &plan.runs[1]);
        assert_eq!(
            b.limits,
            Limits {
                pids: 100,
                memory: 2 << 30
            }
        );
        assert_eq!((b.at.as_deref(), b.net_host), (Some("/srv/a"), true));
        assert_eq!(c.limits, b.limits);
        assert_eq!((c.at.as_deref(), c.net_host), (Some("/srv/c"), true));
        let alone = select(Pick::Ids(vec!["a".into()]), None, &[]);
        let a = &plan_of(&ordered, &all, &alone).runs[0];
        assert_eq!(
            a.limits,
            Limits {
                pids: 100,
                memory: 1 << 30
            }
        );
    }

    #[test]
    fn selections() {
        let cases: &[(Selection, &[(&str, &str)])] = &[
            (
                select(Pick::Ids(vec!["alone".into(), "web".into()]), None, &[]),
                &[("alone", "empty"), ("web", "debian")],
            ),
            (
                select(Pick::All, None, &[]),
                &[
                    ("base", "debian"),
                    ("web", "debian"),
                    ("alone", "empty"),
                    ("top", "debian"),
                ],
            ),
            (select(Pick::All, Some("2/3"), &[]), &[("web", "debian")]),
            (
                select(Pick::All, Some("1/3"), &[]),
                &[("base", "debian"), ("top", "debian")],
            ),
            // A changed fixture re-runs every recipe on it.
            (
                select(
                    Pick::Changed {
                        pages: BTreeSet::new(),
                        fixtures: ["debian".to_string()].into(),
                    },
                    None,
                    &[],
                ),
                &[("base", "debian"), ("web", "debian"), ("top", "debian")],
            ),
            // A changed page re-runs its recipes and those that need them.
            (
                select(
                    Pick::Changed {
                        pages: ["p.md".to_string()].into(),
                        fixtures: BTreeSet::new(),
                    },
                    Some("2/2"),
                    &[],
                ),
                &[("web", "debian"), ("top", "debian")],
            ),
            // A matrix: each recipe on each named fixture.
            (
                select(
                    Pick::Ids(vec!["web".into(), "alone".into()]),
                    None,
                    &["debian", "trixie"],
                ),
                &[
                    ("web", "debian"),
                    ("web", "trixie"),
                    ("alone", "debian"),
                    ("alone", "trixie"),
                ],
            ),
        ];
        for (selection, want) in cases {
            assert_eq!(run_plan(selection).unwrap(), pairs(want), "{selection:?}");
        }
    }

    #[test]
    fn unknown_names_are_errors_with_suggestions() {
        let error = run_plan(&select(Pick::Ids(vec!["webb".into()]), None, &[])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no recipe `webb` in the `fr` book; did you mean `web`?"
        );
        let error = run_plan(&select(Pick::All, None, &["debain"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown fixture `debain`; did you mean `debian`?"
        );
        let error = run_plan(&select(Pick::Ids(vec!["zzz".into()]), None, &[])).unwrap_err();
        assert_eq!(error.to_string(), "no recipe `zzz` in the `fr` book");
    }

    #[test]
    fn partitions() {
        assert_eq!("2/4".parse(), Ok(Partition { k: 2, n: 4 }));
        for bad in ["0/4", "5/4", "1/0", "x", "1/", "/2", "-1/2"] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
        let p = Partition { k: 2, n: 3 };
        let share: Vec<usize> = (0..7).filter(|i| p.contains(*i)).collect();
        assert_eq!(share, [1, 4]);
    }
}
