//! A plan as people read it (`--dry-run`) and as JSON
//! (`--dry-run --format json`).

use std::fmt;

use serde_json::{json, Value};

use super::{FixtureSource, HostCommand, Plan};
use crate::model::{format_size, Limits};

fn command_json(&(command, package): &HostCommand) -> Value {
    json!({ "command": command, "package": package })
}

impl Plan<'_> {
    /// `{lang, recipes: [{id, page, line, fixture, fixture_source, host?,
    /// at?, after, requires, host_commands, limits: {pids, memory},
    /// net_host}], fixtures, host_commands}`.
    pub fn to_json(&self) -> Value {
        let runs: Vec<Value> = self
            .runs
            .iter()
            .map(|run| {
                let mut value = json!({
                    "id": run.recipe.id,
                    "page": run.recipe.page,
                    "line": run.recipe.location.line,
                    "fixture": run.fixture,
                    "fixture_source": run.fixture_source,
                    "after": run.after().collect::<Vec<_>>(),
                    "requires": run.requires,
                    "host_commands": run.host_commands.iter().map(command_json).collect::<Vec<_>>(),
                    "limits": run.limits,
                    "net_host": run.net_host,
                });
                if let Some(host) = &run.host {
                    value["host"] = host.as_str().into();
                }
                if let Some(at) = &run.at {
                    value["at"] = at.as_str().into();
                }
                value
            })
            .collect();
        json!({
            "lang": self.lang,
            "recipes": runs,
            "fixtures": self.fixtures(),
            "host_commands": self.host_commands().iter().map(command_json).collect::<Vec<_>>(),
        })
    }
}

impl fmt::Display for Plan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.runs.len();
        writeln!(
            f,
            "plan: {n} recipe{} of the `{}` book",
            if n == 1 { "" } else { "s" },
            self.lang
        )?;
        let width = self
            .runs
            .iter()
            .map(|r| r.recipe.id.len())
            .max()
            .unwrap_or(0);
        for run in &self.runs {
            let place = format!("{}:{}", run.recipe.page, run.recipe.location.line);
            write!(
                f,
                "  {:width$}  {place}  fixture={}",
                run.recipe.id, run.fixture
            )?;
            if run.fixture_source == FixtureSource::Override {
                write!(f, " (--fixture)")?;
            }
            if let Some(host) = &run.host {
                write!(f, "  host={host}")?;
            }
            let after: Vec<&str> = run.after().collect();
            if !after.is_empty() {
                write!(f, "  after {}", after.join(", "))?;
            }
            if !run.requires.is_empty() {
                let requires: Vec<&str> = run.requires.iter().map(|r| r.as_str()).collect();
                write!(f, "  requires={}", requires.join("+"))?;
            }
            // What the sandbox will be, where it is not the default.
            if let Some(at) = &run.at {
                write!(f, "  at={at}")?;
            }
            if run.net_host {
                write!(f, "  net=host")?;
            }
            if run.limits.pids != Limits::DEFAULT.pids {
                write!(f, "  pids={}", run.limits.pids)?;
            }
            if run.limits.memory != Limits::DEFAULT.memory {
                write!(f, "  memory={}", format_size(run.limits.memory))?;
            }
            writeln!(f)?;
        }
        let fixtures: Vec<&str> = self.fixtures().into_iter().collect();
        if !fixtures.is_empty() {
            writeln!(f, "fixtures to prepare: {}", fixtures.join(", "))?;
        }
        let commands: Vec<String> = self
            .host_commands()
            .iter()
            .map(|(command, package)| format!("{command} ({package})"))
            .collect();
        if !commands.is_empty() {
            writeln!(f, "host commands: {}", commands.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use crate::model::{index, Recipe};
    use crate::parse::parse_page;
    use crate::plan::{plan, Pick, Selection};

    #[test]
    fn text_and_json_show_chain_fixture_and_commands() {
        let page = "```sh recipe=base fixture=debian\nip link show\n```\n\n```sh recipe=web needs=base requires=root memory=1G at=/srv net=host\ntrue\n```\n";
        let (recipes, _) = parse_page(Path::new("p.md"), "p.md", "fr", page);
        let ordered: Vec<&Recipe> = recipes.iter().collect();
        let all = index(ordered.iter().copied());
        let selection = Selection {
            pick: Pick::Ids(vec!["web".into()]),
            partition: None,
            fixtures: vec![],
            hosts: vec![],
        };
        let known: BTreeSet<String> = ["debian".to_string()].into();
        let plan = plan("fr", &ordered, &all, &selection, &known).unwrap();
        assert_eq!(
            plan.to_string(),
            "plan: 1 recipe of the `fr` book\n  web  p.md:5  fixture=debian  after base  requires=root  at=/srv  net=host  memory=1G\nfixtures to prepare: debian\nhost commands: ip (iproute2)\n"
        );
        assert_eq!(
            plan.to_json(),
            serde_json::json!({
                "lang": "fr",
                "recipes": [{
                    "id": "web", "page": "p.md", "line": 5, "fixture": "debian",
                    "fixture_source": "declared", "after": ["base"], "requires": ["root"],
                    "host_commands": [{"command": "ip", "package": "iproute2"}],
                    "at": "/srv", "net_host": true,
                    "limits": {"pids": 2048, "memory": 1u64 << 30},
                }],
                "fixtures": ["debian"],
                "host_commands": [{"command": "ip", "package": "iproute2"}],
            })
        );
    }
}
