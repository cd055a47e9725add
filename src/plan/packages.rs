//! Host commands a recipe calls, and the Debian package that brings each.
//! Only what runs is read: script and rust bodies and the `$ ` lines of
//! transcripts. Expected output, written files and checked files are data,
//! so a word there ("ip", "ps", "ping") never asks for a package.

use std::collections::BTreeSet;

use crate::model::{Recipe, Requirement, StepKind};

/// A command a recipe calls on the host and the package that brings it.
pub type HostCommand = (&'static str, &'static str);

/// Commands a recipe's steps may call, and their packages.
pub const STEP_COMMANDS: &[HostCommand] = &[
    ("ip", "iproute2"),
    ("bridge", "iproute2"),
    ("iptables", "iptables"),
    ("nft", "nftables"),
    ("brctl", "bridge-utils"),
    ("debootstrap", "debootstrap"),
    ("busybox", "busybox-static"),
    ("lxc-start", "lxc"),
    ("lxc-attach", "lxc"),
    ("lxc-stop", "lxc"),
    ("lxc-console", "lxc"),
    ("lxc-info", "lxc"),
    ("lxc-ls", "lxc"),
    ("script", "bsdutils"),
    ("ping", "iputils-ping"),
    ("sysctl", "procps"),
    ("ps", "procps"),
    ("pgrep", "procps"),
    ("lxcfs", "lxcfs"),
    ("rsync", "rsync"),
    ("getcap", "libcap2-bin"),
    ("ssh-keygen", "openssh-client"),
    ("ssh-keyscan", "openssh-client"),
    ("perl", "perl"),
];

/// The host commands the steps of these recipes call, with their packages,
/// sorted and without repeats.
pub fn needs_of(chain: &[&Recipe]) -> Vec<HostCommand> {
    let mut needs = BTreeSet::new();
    for recipe in chain {
        if recipe.requires.contains(&Requirement::Lxc) {
            needs.insert(("lxc-start", "lxc"));
        }
        for step in &recipe.steps {
            let code: Vec<&str> = match step.kind() {
                StepKind::Script | StepKind::Rust => vec![step.body.as_str()],
                StepKind::Console => step
                    .transcript()
                    .iter()
                    .map(|entry| entry.command.as_str())
                    .collect(),
                StepKind::File | StepKind::Check | StepKind::Expect => continue,
            };
            let words: BTreeSet<&str> = code
                .iter()
                .flat_map(|text| {
                    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                })
                .collect();
            needs.extend(
                STEP_COMMANDS
                    .iter()
                    .filter(|(command, _)| words.contains(command)),
            );
        }
    }
    needs.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_page;
    use std::path::Path;

    fn needs(page: &str) -> Vec<HostCommand> {
        let (recipes, problems) = parse_page(Path::new("p.md"), "p.md", "fr", page);
        assert!(problems.is_empty(), "{problems:?}");
        needs_of(&[&recipes[0]])
    }

    #[test]
    fn needs_come_from_the_commands_steps_call_and_from_requires() {
        let needs = needs("```sh recipe=a requires=lxc\nip link add br0 type bridge\nnft list ruleset | grep -c nat\n```\n\n```console recipe=a\n$ iptables-save\n$ brctl show\n```\n");
        for want in [
            ("ip", "iproute2"),
            ("nft", "nftables"),
            ("brctl", "bridge-utils"),
            ("lxc-start", "lxc"),
        ] {
            assert!(needs.contains(&want), "{want:?} in {needs:?}");
        }
        // A word inside another word is not a command.
        assert!(!needs.contains(&("iptables", "iptables")), "{needs:?}");
    }

    #[test]
    fn output_and_files_are_not_commands() {
        let page = "```sh recipe=a\necho hello\n```\n\n```text recipe=a expect\nping ip ps\n```\n\n```console recipe=a\n$ cat /etc/motd\nscript sysctl\n```\n\n```ini recipe=a file=/etc/x.conf\ncommand = ip link\n```\n\n```ini recipe=a file=/etc/x.conf check\ncommand = ip link\n```\n";
        assert_eq!(needs(page), vec![]);
    }
}
