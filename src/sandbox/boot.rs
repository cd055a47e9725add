//! A booted host inside the sandbox (`host=NAME`): the host fixture's own
//! init (systemd), started as an LXC system container on the sandbox's
//! fixture tree, with nesting, so that LXC, lxc-net and lxcfs run in it as
//! on a reader's server. The sandbox's boundary and limits are unchanged:
//! the booted host is one more tree of processes inside them. Steps then
//! run in it through `lxc-attach`, and die with the sandbox.

use std::time::Duration;

use super::Sandbox;
use crate::env::StepProgram;
use crate::model::{Where, STEP_PATH};

/// Writes the host container's configuration, gives it an uplink bridge
/// (`uplink0`, standing for the server's network), starts it and waits
/// until systemd says `running` or `degraded`. Prints `state`, `took` (ms),
/// `failed` (units) and `apparmor` lines; on a boot that never gets there,
/// the last journal lines too, and exits 3.
const BOOT: &str = r#"
name=$1 seconds=$2
dir=/var/lib/lxc/$name
mkdir -p "$dir"
uts=$(cat /run/recipes/rootfs/etc/hostname 2>/dev/null || echo "$name")
{
    echo "lxc.uts.name = $uts"
    echo "lxc.rootfs.path = dir:/run/recipes/rootfs"
    echo "lxc.include = /usr/share/lxc/config/common.conf"
    echo "lxc.include = /usr/share/lxc/config/nesting.conf"
    echo "lxc.mount.auto = proc:rw sys:rw cgroup:rw"
    echo "lxc.apparmor.profile = unconfined"
    echo "lxc.net.0.type = veth"
    echo "lxc.net.0.link = uplink0"
    echo "lxc.net.0.name = eth0"
    echo "lxc.net.0.flags = up"
    echo "lxc.tty.max = 2"
    # A /run of its own, mounted before systemd looks, so that what the
    # steps use (programs, helpers) can be shown under it.
    echo "lxc.mount.entry = tmpfs run tmpfs rw,nosuid,nodev,mode=755,create=dir 0 0"
    for share in /run/recipes/rust /run/recipes/bin /run/recipes/lib; do
        if [ -d "$share" ]; then
            echo "lxc.mount.entry = $share ${share#/} none bind,ro,create=dir 0 0"
        fi
    done
    echo "lxc.mount.entry = /tmp/recipe tmp/recipe none bind,create=dir 0 0"
    # lxcfs, as on a server: FUSE.
    echo "lxc.mount.entry = /dev/fuse dev/fuse none bind,create=file 0 0"
    # On an AppArmor kernel, its enabled flag reads empty in the host too,
    # as in the sandbox (ops::APPARMOR_ENABLED): its LXC then starts the
    # book's containers, in the host's lxc-start profile if any, instead of
    # refusing them ("Failed to initialize LSM"). The host itself is
    # unconfined: the sandbox's LXC sees the flag and moves it there, as
    # lxc.apparmor.profile asks. Unprivileged containers still mount a
    # sysfs of their own: the kernel wants a fully visible one in their
    # mount namespace, which this mask (a file, locked in theirs) spoils
    # for /sys, and nesting.conf's dev/.lxc/sys is one.
    if [ -e /sys/module/apparmor/parameters/enabled ]; then
        echo "lxc.mount.entry = /dev/null sys/module/apparmor/parameters/enabled none bind,optional 0 0"
    fi
} > "$dir/config"
ip link add uplink0 type bridge
ip link set uplink0 up
start=$(date +%s%N)
lxc-start -n "$name" -o "$dir/lxc.log"
lxc-wait -n "$name" -s RUNNING -t "$seconds"
# systemctl answers once systemd's socket exists; then --wait waits until
# the boot is over.
end=$(( $(date +%s) + seconds ))
while :; do
    state=$(timeout "$seconds" lxc-attach -n "$name" -- systemctl is-system-running --wait 2>/dev/null || true)
    case $state in
    running | degraded | maintenance | stopping) break ;;
    esac
    [ "$(date +%s)" -lt "$end" ] || break
    sleep 0.02
done
echo "state ${state:-none}"
echo "took $(( ($(date +%s%N) - start) / 1000000 ))"
echo "failed $(lxc-attach -n "$name" -- systemctl list-units --failed --plain --no-legend 2>/dev/null | awk '{print $1}' | tr '\n' ' ')"
if [ -e /run/recipes/rootfs/sbin/apparmor_parser ] && [ ! -d /sys/module/apparmor ]; then
    echo "apparmor userland-only"
fi
case $state in
running | degraded) ;;
*)
    echo "journal"
    lxc-attach -n "$name" -- journalctl -b --no-pager -n 30 2>&1 || tail -n 30 "$dir/lxc.log"
    exit 3
    ;;
esac
"#;

/// A chroot in the booted host, with its kernel views and devices.
const CHROOT: &str = r#"root=$0
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
exec chroot "$root" "$@"
"#;

/// Why a booted host (`host=`) did not come up.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("cannot boot the host `{name}`: {source}")]
    Spawn {
        name: String,
        source: std::io::Error,
    },
    /// systemd did not reach `running` or `degraded` in time (`none`: it
    /// never answered).
    #[error("{}", not_booted(.name, .state, *.took_ms, .failed, .journal))]
    NotBooted {
        name: String,
        state: String,
        took_ms: u64,
        failed: Vec<String>,
        /// The last journal lines, or what the boot printed on stderr.
        journal: Vec<String>,
    },
}

impl From<BootError> for crate::env::EnvError {
    fn from(error: BootError) -> Self {
        crate::env::EnvError::behind(error)
    }
}

fn not_booted(
    name: &str,
    state: &str,
    took_ms: u64,
    failed: &[String],
    journal: &[String],
) -> String {
    let took = took_ms as f64 / 1000.0;
    let mut message = if state == "none" {
        format!("the host `{name}` did not boot: `systemctl is-system-running` never answered in {took:.1} s (is systemd its init?)")
    } else {
        format!("the host `{name}` did not boot: systemd still says `{state}` after {took:.1} s")
    };
    if !failed.is_empty() {
        message.push_str(&format!("; failed units: {}", failed.join(", ")));
    }
    if !journal.is_empty() {
        message.push_str("\nits last journal lines:\n");
        message.push_str(&journal.join("\n"));
    }
    message
}

/// What a boot said: its state, time, failed units and AppArmor note.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Booted {
    pub state: String,
    pub took_ms: u64,
    pub failed: Vec<String>,
    pub apparmor_userland_only: bool,
    /// The last journal lines of a boot that did not get there.
    pub journal: Vec<String>,
}

impl Booted {
    /// Reads the lines [`BOOT`] prints.
    pub fn parse(output: &str) -> Booted {
        let mut booted = Booted::default();
        let mut lines = output.lines();
        while let Some(line) = lines.next() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "state" => booted.state = value.trim().to_string(),
                "took" => booted.took_ms = value.trim().parse().unwrap_or(0),
                "failed" => {
                    booted.failed = value.split_whitespace().map(str::to_string).collect();
                }
                "apparmor" => booted.apparmor_userland_only = true,
                "journal" => {
                    booted.journal = lines.by_ref().map(str::to_string).collect();
                }
                _ => {}
            }
        }
        booted
    }

    /// The report's line: `booted NAME (systemd): running in 0.31 s; failed
    /// units: none`, with the AppArmor note where it applies.
    pub fn note(&self, name: &str) -> String {
        let failed = if self.failed.is_empty() {
            "none".to_string()
        } else {
            self.failed.join(", ")
        };
        let mut note = format!(
            "booted {name} (systemd): {} in {:.2} s; failed units: {failed}",
            self.state,
            self.took_ms as f64 / 1000.0
        );
        if self.apparmor_userland_only {
            note.push_str("; AppArmor's userland is installed, but this kernel has no AppArmor");
        }
        note
    }
}

impl Sandbox {
    /// Boots the host fixture `name` (the sandbox's fixture tree) and runs
    /// every later step in it; fails with the state, the failed units and
    /// the last journal lines when it does not reach `running` or
    /// `degraded` within `timeout`.
    pub fn boot(&mut self, name: &str, timeout: Duration) -> Result<(), BootError> {
        // A host's own set-user-ID helpers (`newuidmap` for an unprivileged
        // user's containers) work in it, up to the sandbox's root; the
        // seccomp filter stays.
        self.setuid = true;
        let program = StepProgram {
            program: "sh".into(),
            args: vec![
                "-euc".into(),
                BOOT.into(),
                "boot".into(),
                name.into(),
                timeout.as_secs().max(1).to_string().into(),
            ],
            where_: Where::Host,
        };
        let out = self
            .enter(&program)
            .env_clear()
            .env("PATH", STEP_PATH)
            .env("LANG", "C.UTF-8")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| BootError::Spawn {
                name: name.to_string(),
                source,
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        let booted = Booted::parse(&text);
        if !out.status.success() {
            let mut journal = booted.journal;
            if journal.is_empty() {
                journal = String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .map(str::to_string)
                    .collect();
            }
            return Err(BootError::NotBooted {
                name: name.to_string(),
                state: booted.state,
                took_ms: booted.took_ms,
                failed: booted.failed,
                journal,
            });
        }
        self.booted = Some((name.to_string(), booted.note(name)));
        Ok(())
    }

    /// `lxc-attach` into the booted host, then the step's program there.
    pub(super) fn attach_args(&self, name: &str, step: &StepProgram) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "lxc-attach".into(),
            "-n".into(),
            name.into(),
            "--keep-env".into(),
            "--".into(),
        ];
        if step.where_ == Where::Chroot {
            // As the sandbox's chroot steps: proc, sys and dev mounted, in
            // a mount namespace that dies with the step.
            args.extend(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-euc",
                ]
                .map(Into::into),
            );
            args.push(CHROOT.into());
            args.push(self.rootfs.clone().into());
        }
        args.push(step.program.clone());
        args.extend(step.args.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_hides_apparmor_and_keeps_a_whole_sysfs_for_unprivileged_containers() {
        let mask = "lxc.mount.entry = /dev/null sys/module/apparmor/parameters/enabled none bind,optional 0 0";
        let at = BOOT.find(mask).expect("the mask");
        // Only on a kernel that has the flag: elsewhere the config is unchanged.
        let guard = BOOT[..at].rfind("if [ -e /sys/module/apparmor/parameters/enabled ]");
        assert!(guard.is_some_and(|g| !BOOT[g..at].contains("fi\n")));
        // nesting.conf's dev/.lxc/sys is that whole sysfs.
        assert!(BOOT.contains("echo \"lxc.include = /usr/share/lxc/config/nesting.conf\""));
    }

    #[test]
    fn a_boot_report_reads_its_state_time_units_and_journal() {
        let ok = Booted::parse("state running\ntook 312\nfailed \napparmor userland-only\n");
        assert_eq!(ok.state, "running");
        assert_eq!(ok.took_ms, 312);
        assert!(ok.failed.is_empty() && ok.apparmor_userland_only);
        assert_eq!(
            ok.note("debian-stock"),
            "booted debian-stock (systemd): running in 0.31 s; failed units: none; AppArmor's userland is installed, but this kernel has no AppArmor"
        );
        let bad = Booted::parse(
            "state starting\ntook 60012\nfailed lxc-net.service x.service \njournal\nDec 06 a\nDec 06 b\n",
        );
        assert_eq!(bad.failed, ["lxc-net.service", "x.service"]);
        assert_eq!(bad.journal, ["Dec 06 a", "Dec 06 b"]);
        assert!(bad
            .note("h")
            .contains("failed units: lxc-net.service, x.service"));
    }

    #[test]
    fn a_host_that_did_not_boot_says_its_state_units_and_journal() {
        let stuck = BootError::NotBooted {
            name: "h".into(),
            state: "starting".into(),
            took_ms: 60012,
            failed: vec!["lxc-net.service".into(), "x.service".into()],
            journal: vec!["Dec 06 a".into(), "Dec 06 b".into()],
        };
        assert_eq!(
            stuck.to_string(),
            "the host `h` did not boot: systemd still says `starting` after 60.0 s; \
             failed units: lxc-net.service, x.service\nits last journal lines:\nDec 06 a\nDec 06 b"
        );
        let silent = BootError::NotBooted {
            name: "h".into(),
            state: "none".into(),
            took_ms: 1500,
            failed: Vec::new(),
            journal: Vec::new(),
        };
        assert_eq!(
            silent.to_string(),
            "the host `h` did not boot: `systemctl is-system-running` never answered in 1.5 s (is systemd its init?)"
        );
    }
}
