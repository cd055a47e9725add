//! Chooses and makes the environment each recipe runs in: a sandbox on its
//! fixture when running as root, plain child processes beside a temporary
//! folder otherwise (the `empty` fixture only).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::checkpoint::{checkpoint_key, Layers};
use crate::fixture::{BuildError, Builder, FixtureError, Store};
use crate::fsutil::FsError;
use crate::host::{self, InstallError, Installer};
use crate::model::Limits;
use crate::model::{Recipe, Requirement, Where, EMPTY_FIXTURE, STEP_PATH};
use crate::plan::RecipeRun;
use crate::process::{Exit, Supervisor};
use crate::runner::{Checkpoint, Direct, EnvError, Environment, EnvironmentFactory, StepProgram};
use crate::sandbox::ops::{self, Guest, IdRange, Share};
use crate::sandbox::{Sandbox, SandboxSpec};

/// How long a fixture's setup script (or writing one of its files) may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Builds bases: host packages through the installer, debootstrap under the
/// run's supervisor, the definition's files and setup script in a sandbox
/// whose root is the base being built.
pub struct BaseBuilder<'a> {
    pub installer: &'a Installer,
    pub supervisor: &'a Arc<Supervisor>,
    pub exe: &'a Path,
    pub cache: &'a Path,
}

impl BaseBuilder<'_> {
    /// Runs `program` chrooted in `sandbox`, feeding it `stdin`.
    fn chrooted(
        &self,
        sandbox: &Sandbox,
        program: &str,
        args: &[&str],
        stdin: Option<Vec<u8>>,
        what: &str,
    ) -> Result<(), BuildError> {
        let step = StepProgram {
            program: program.into(),
            args: args.iter().map(Into::into).collect(),
            where_: Where::Chroot,
        };
        let mut command = sandbox.enter(&step);
        command
            .env_clear()
            .env("PATH", STEP_PATH)
            .env("HOME", "/root")
            .env("LANG", "C.UTF-8");
        let out = self
            .supervisor
            .run(command, stdin, SETUP_TIMEOUT)
            .map_err(|source| BuildError::CannotRun {
                what: what.to_string(),
                source,
            })?;
        if out.exit != Exit::Code(0) {
            return Err(BuildError::Failed {
                what: what.to_string(),
                exit: out.exit,
                output: String::from_utf8_lossy(&out.output).into_owned(),
            });
        }
        Ok(())
    }
}

impl Builder for BaseBuilder<'_> {
    fn install(&self, needs: &[(&str, &str)]) -> Result<(), InstallError> {
        self.installer.ensure(needs)
    }

    fn events(&self) -> &dyn crate::report::EventSink {
        self.installer.events()
    }

    fn run(
        &self,
        command: Command,
        timeout: Duration,
        line: &dyn Fn(&str),
    ) -> Result<(), BuildError> {
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let finished = std::thread::scope(|scope| {
            let run = scope.spawn(|| {
                self.supervisor
                    .run_observed(command, None, timeout, Some(tx))
            });
            let mut pending: Vec<u8> = Vec::new();
            while !run.is_finished() {
                if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
                    pending.extend(chunk);
                    while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                        let text: Vec<u8> = pending.drain(..=end).collect();
                        line(String::from_utf8_lossy(&text).trim_end());
                    }
                }
            }
            run.join()
        });
        let finished = finished
            .map_err(|_| BuildError::Panicked)?
            .map_err(BuildError::Start)?;
        if finished.exit == Exit::Code(0) {
            return Ok(());
        }
        let output = String::from_utf8_lossy(&finished.output);
        let tail: Vec<String> = output.lines().rev().take(30).map(str::to_string).collect();
        Err(BuildError::Ended {
            exit: finished.exit,
            tail: tail.into_iter().rev().collect(),
        })
    }

    fn setup(&self, rootfs: &Path, script: &str) -> Result<(), BuildError> {
        let spec = SandboxSpec {
            parent: 0,
            ids: IdRange { base: 0, count: 0 },
            lower: None,
            layers: Vec::new(),
            rootfs_rw: Some(rootfs.to_path_buf()),
            keep: None,
            at: None,
            // A setup script may download packages.
            net_host: true,
            cgroups: None,
            limits: Limits::DEFAULT,
            cpu_weight: crate::model::CPU_WEIGHT,
            hostname: "sandbox".into(),
            shares: Vec::new(),
            guest: None,
        };
        let mut sandbox = Sandbox::start(spec, self.exe.to_path_buf(), self.cache)?;
        self.chrooted(
            &sandbox,
            "/bin/sh",
            &["-euc", script],
            None,
            "the setup script",
        )?;
        Ok(sandbox.stop()?)
    }
}

/// The bases the prepare stage could not build, by name, with why (shared
/// by every run on them).
pub type Unbuilt = std::collections::BTreeMap<String, Arc<FixtureError>>;

/// Sandboxed environments on cached fixtures (needs root).
pub struct SandboxFactory {
    pub store: Store,
    pub installer: Installer,
    pub supervisor: Arc<Supervisor>,
    pub exe: PathBuf,
    /// Where `--keep` leaves fixtures.
    pub keep: Option<PathBuf>,
    /// The cache (compiled programs, id slots).
    pub cache: PathBuf,
    /// The shell helpers steps may source (`recipes/lib`).
    pub lib: PathBuf,
    /// `checkpoint::lib_digest` of `lib`, read once: part of every checkpoint's key.
    pub lib_digest: String,
    /// How long a booted host (`host=`) may take to reach `running` or
    /// `degraded` when its first step names no `timeout=`: the run's.
    pub boot_timeout: Duration,
    /// Bases the prepare stage could not build, with why: their runs fail
    /// with that reason instead of building again.
    pub unbuilt: Unbuilt,
}

impl SandboxFactory {
    /// Host folders shown read-only inside at fixed paths: the compiled
    /// Rust programs and the shell helpers (a host path may lie under a
    /// folder the sandbox hides, or one its root may not enter).
    fn shares(&self) -> Result<Vec<Share>, FsError> {
        let rust = self.cache.join("rust");
        std::fs::create_dir_all(&rust).map_err(FsError::at("create", &rust))?;
        let mut shares = vec![Share {
            host: rust,
            inside: Path::new(ops::RUN).join("rust"),
            writable: false,
        }];
        // The recipes binary itself (terminal sessions run it inside).
        if let Some(dir) = self.exe.parent() {
            shares.push(Share {
                host: dir.to_path_buf(),
                inside: Path::new(ops::RUN).join("bin"),
                writable: false,
            });
        }
        if self.lib.is_dir() {
            shares.push(Share {
                host: self.lib.clone(),
                inside: Path::new(ops::RUN).join("lib"),
                writable: false,
            });
        }
        Ok(shares)
    }
}

impl EnvironmentFactory for SandboxFactory {
    /// Starts the sandbox the plan describes for `run`: its fixture (in its
    /// booted host, if any), limits, `at=` and network, on top of `from`.
    fn create(
        &self,
        run: &RecipeRun,
        from: Option<&Checkpoint>,
    ) -> Result<Box<dyn Environment>, EnvError> {
        // Installed by the prepare stage unless `--no-install`: then each
        // run that lacks one says which.
        self.installer.ensure(&run.host_commands)?;
        let builder = BaseBuilder {
            installer: &self.installer,
            supervisor: &self.supervisor,
            exe: &self.exe,
            cache: &self.cache,
        };
        let base = |name: &str| -> Result<Option<PathBuf>, EnvError> {
            if name == EMPTY_FIXTURE {
                return Ok(None);
            }
            if let Some(why) = self.unbuilt.get(name) {
                return Err(EnvError::Unbuilt(Arc::clone(why) as crate::env::Behind));
            }
            Ok(Some(self.store.ensure(name, &builder)?))
        };
        let (fixture, at) = (run.fixture.as_str(), run.at.clone());
        // With a booted host, its tree is the sandbox's fixture and the
        // recipe's own fixture appears inside it.
        let (lower, guest, at) = match run.host.as_deref() {
            Some(host) => (
                base(host)?,
                Some(Guest {
                    lower: base(fixture)?,
                    path: at.unwrap_or_else(|| ops::GUEST_DEFAULT.to_string()),
                }),
                None,
            ),
            None => (base(fixture)?, None, at),
        };
        let keep = match &self.keep {
            Some(parent) => {
                std::fs::create_dir_all(parent).map_err(FsError::at("create", parent))?;
                let dir = tempfile::Builder::new()
                    .prefix(&format!("{}-", run.recipe.id))
                    .tempdir_in(parent)
                    .map_err(FsError::at("create a folder in", parent))?;
                Some(dir.keep())
            }
            None => None,
        };
        let spec = SandboxSpec {
            parent: 0,
            ids: IdRange { base: 0, count: 0 },
            lower,
            layers: from.map(|c| c.dir.join("upper")).into_iter().collect(),
            rootfs_rw: None,
            keep,
            at,
            net_host: run.net_host,
            cgroups: None,
            limits: run.limits,
            cpu_weight: run.cpu_weight,
            hostname: "sandbox".into(),
            shares: self.shares()?,
            guest,
        };
        let mut sandbox = Sandbox::start(spec, self.exe.clone(), &self.cache)?;
        if let Some(checkpoint) = from {
            sandbox.restore(&checkpoint.dir)?;
        }
        if let Some(host) = &run.host {
            // The boot is bounded like the first step it comes before.
            let first = run.chain.first().and_then(|r| r.steps.first());
            let timeout = first.and_then(|s| s.timeout).unwrap_or(self.boot_timeout);
            sandbox.boot(host, timeout)?;
        }
        Ok(Box::new(sandbox))
    }

    /// `cache/layers/FIXTURE-KEY`, the key a hash of the tool's version, the
    /// fixture's definition and every step of the chain (kind, attributes,
    /// body): a change to any of them never reuses an old layer. Only for
    /// fixtures with a base (the overlay is what a layer keeps).
    fn checkpoint(&self, fixture: &str, prerequisites: &[&Recipe]) -> Option<Checkpoint> {
        if fixture == EMPTY_FIXTURE {
            return None;
        }
        let definition = self.store.definition(fixture).ok()?;
        let key = checkpoint_key(
            &definition.name,
            &definition.hash,
            prerequisites,
            &self.lib_digest,
        );
        Some(Layers::new(&self.cache).at(fixture, &key))
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
            Requirement::Kernel(feature) => crate::doctor::kernel_lacks(feature),
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
        run: &RecipeRun,
        _from: Option<&Checkpoint>,
    ) -> Result<Box<dyn Environment>, EnvError> {
        if let Some(host) = &run.host {
            return Err(EnvError::HostNeedsRoot(host.clone()));
        }
        if run.fixture != EMPTY_FIXTURE {
            return Err(EnvError::FixtureNeedsRoot(run.fixture.clone()));
        }
        Ok(Box::new(Direct::new(self.keep)?))
    }

    fn unmet(&self, requirement: Requirement) -> Option<String> {
        match requirement {
            Requirement::Root | Requirement::Lxc => Some("not running as root".into()),
            Requirement::Net if !host::network_available() => Some("no network".into()),
            Requirement::Net => None,
            Requirement::Kernel(feature) => crate::doctor::kernel_lacks(feature),
        }
    }
}
