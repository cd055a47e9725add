//! Chooses and makes the environment each recipe runs in: a sandbox on its
//! fixture when running as root, plain child processes beside a temporary
//! folder otherwise (the `empty` fixture only).

use std::path::{Path, PathBuf};

use crate::fixture::Store;
use crate::host::{self, Installer};
use crate::model::{Recipe, Requirement, EMPTY_FIXTURE};
use crate::runner::{Direct, Environment, EnvironmentFactory};
use crate::sandbox::cgroup::Limits;
use crate::sandbox::plan::{self, IdRange, Share};
use crate::sandbox::{Sandbox, SandboxSpec};

/// The limits of a chain: the highest any of its recipes asks for, or the
/// defaults.
fn limits_of(chain: &[&Recipe]) -> Limits {
    let mut limits = Limits::DEFAULT;
    if let Some(pids) = chain.iter().filter_map(|r| r.pids).max() {
        limits.pids = pids;
    }
    if let Some(memory) = chain.iter().filter_map(|r| r.memory).max() {
        limits.memory = memory;
    }
    limits
}

/// Sandboxed environments on cached fixtures (needs root).
pub struct SandboxFactory {
    pub store: Store,
    pub installer: Installer,
    pub exe: PathBuf,
    /// Where `--keep` leaves fixtures.
    pub keep: Option<PathBuf>,
    /// The cache (compiled programs, id slots).
    pub cache: PathBuf,
    /// The shell helpers steps may source (`recipes/lib`).
    pub lib: PathBuf,
}

impl SandboxFactory {
    /// Host folders shown read-only inside at fixed paths: the compiled
    /// Rust programs and the shell helpers (a host path may lie under a
    /// folder the sandbox hides, or one its root may not enter).
    fn shares(&self) -> Result<Vec<Share>, String> {
        let rust = self.cache.join("rust");
        std::fs::create_dir_all(&rust)
            .map_err(|e| format!("cannot create {}: {e}", rust.display()))?;
        let mut shares = vec![Share {
            host: rust,
            inside: Path::new(plan::RUN).join("rust"),
            writable: false,
        }];
        if self.lib.is_dir() {
            shares.push(Share {
                host: self.lib.clone(),
                inside: Path::new(plan::RUN).join("lib"),
                writable: false,
            });
        }
        Ok(shares)
    }
}

impl EnvironmentFactory for SandboxFactory {
    fn create(
        &self,
        recipe: &Recipe,
        fixture: &str,
        chain: &[&Recipe],
    ) -> Result<Box<dyn Environment>, String> {
        self.installer.ensure(&host::needs_of(chain))?;
        let lower = if fixture == EMPTY_FIXTURE {
            None
        } else {
            let install = |needs: &[(&str, &str)]| self.installer.ensure(needs);
            Some(
                self.store
                    .ensure(fixture, &install)
                    .map_err(|e| e.to_string())?,
            )
        };
        let keep = match &self.keep {
            Some(parent) => {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                let dir = tempfile::Builder::new()
                    .prefix(&format!("{}-", recipe.id))
                    .tempdir_in(parent)
                    .map_err(|e| format!("cannot create a folder in {}: {e}", parent.display()))?;
                Some(dir.keep())
            }
            None => None,
        };
        let spec = SandboxSpec {
            parent: 0,
            ids: IdRange { base: 0, count: 0 },
            lower,
            rootfs_rw: None,
            keep,
            at: chain.iter().rev().find_map(|r| r.at.clone()),
            net_host: chain.iter().any(|r| r.net_host),
            cgroups: None,
            limits: limits_of(chain),
            hostname: "sandbox".into(),
            shares: self.shares()?,
        };
        Ok(Box::new(Sandbox::start(
            spec,
            self.exe.clone(),
            &self.cache,
        )?))
    }

    fn unmet(&self, requirement: Requirement) -> Option<String> {
        match requirement {
            Requirement::Root => None,
            Requirement::Lxc if !host::command_exists("lxc-start") && !self.installer.allowed => {
                Some("the lxc tools are not installed (apt-get install lxc)".into())
            }
            Requirement::Lxc => None,
            Requirement::Net if !host::network_available() => {
                Some("the package archive of the host's apt sources does not answer".into())
            }
            Requirement::Net => None,
        }
    }
}

/// Without root: the `empty` fixture only, steps as plain child processes.
pub struct LocalFactory {
    pub keep: bool,
}

impl EnvironmentFactory for LocalFactory {
    fn create(
        &self,
        _recipe: &Recipe,
        fixture: &str,
        _chain: &[&Recipe],
    ) -> Result<Box<dyn Environment>, String> {
        if fixture != EMPTY_FIXTURE {
            return Err(format!(
                "running a recipe on the fixture `{fixture}` needs root (the sandbox uses namespaces and mounts): run recipes as root"
            ));
        }
        Ok(Box::new(Direct::new(self.keep)?))
    }

    fn unmet(&self, requirement: Requirement) -> Option<String> {
        match requirement {
            Requirement::Root | Requirement::Lxc => Some("not running as root".into()),
            Requirement::Net if !host::network_available() => Some("no network".into()),
            Requirement::Net => None,
        }
    }
}
