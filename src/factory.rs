//! Chooses and makes the environment each recipe runs in: a sandbox on its
//! fixture when running as root, plain child processes beside a temporary
//! folder otherwise (the `empty` fixture only).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::fixture::{BuildError, Builder, Definition, FixtureError, Store};
use crate::fsutil::FsError;
use crate::host::{self, InstallError, Installer};
use crate::model::{Recipe, Requirement, Where, EMPTY_FIXTURE, STEP_PATH};
use crate::process::{Exit, Supervisor};
use crate::runner::{Checkpoint, Direct, EnvError, Environment, EnvironmentFactory, StepProgram};
use crate::sandbox::cgroup::Limits;
use crate::sandbox::ops::{self, Guest, IdRange, Share};
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
    /// [`lib_digest`] of `lib`, read once: part of every checkpoint's key.
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
    fn create(
        &self,
        recipe: &Recipe,
        fixture: &str,
        chain: &[&Recipe],
        host: Option<&str>,
        from: Option<&Checkpoint>,
    ) -> Result<Box<dyn Environment>, EnvError> {
        self.installer.ensure(&crate::plan::needs_of(chain))?;
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
        let at = chain.iter().rev().find_map(|r| r.at.clone());
        // With a booted host, its tree is the sandbox's fixture and the
        // recipe's own fixture appears inside it.
        let (lower, guest, at) = match host {
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
                    .prefix(&format!("{}-", recipe.id))
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
            net_host: chain.iter().any(|r| r.net_host),
            cgroups: None,
            limits: limits_of(chain),
            hostname: "sandbox".into(),
            shares: self.shares()?,
            guest,
        };
        let mut sandbox = Sandbox::start(spec, self.exe.clone(), &self.cache)?;
        if let Some(checkpoint) = from {
            sandbox.restore(&checkpoint.dir)?;
        }
        if let Some(host) = host {
            // The boot is bounded like the first step it comes before.
            let first = chain.first().and_then(|r| r.steps.first());
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
        let key = checkpoint_key(&definition, prerequisites, &self.lib_digest);
        Some(Checkpoint {
            dir: layers_dir(&self.cache).join(format!("{fixture}-{key}")),
            key,
        })
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

/// The shape of a checkpoint's folder; part of its key.
const CHECKPOINT_FORMAT: &str = "checkpoint 2: upper, files.tar, network.json";

/// The key of the checkpoint at the end of `prerequisites` on the fixture
/// `definition`: a hash of the tool's version, the fixture's definition and
/// every step of the chain (kind, attributes, body), and the shell helpers
/// the steps may call (`recipes/lib`, as [`lib_digest`] sums it up), so that
/// a change to any of them never reuses an old layer.
pub fn checkpoint_key(definition: &Definition, prerequisites: &[&Recipe], lib: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(lib);
    hasher.update([0]);
    // What a checkpoint holds (a layer, an archive of files, a network): a
    // build of another version or of an uncommitted tree never reads one
    // of another shape.
    hasher.update(CHECKPOINT_FORMAT);
    hasher.update(env!("RECIPES_VERSION"));
    hasher.update([0]);
    hasher.update(&definition.name);
    hasher.update([0]);
    hasher.update(&definition.hash);
    for recipe in prerequisites {
        hasher.update([1]);
        hasher.update(&recipe.id);
        for step in &recipe.steps {
            hasher.update([2]);
            hasher.update(&step.syntax);
            hasher.update(format!("{:?}", step.attrs));
            hasher.update([0]);
            hasher.update(&step.body);
        }
    }
    crate::digest::short_hex(hasher, 12)
}

/// A digest of the shell helpers' folder: each file's name and contents.
pub fn lib_digest(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = crate::fsutil::entries(dir)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(
            file.strip_prefix(dir)
                .unwrap_or(&file)
                .as_os_str()
                .as_encoded_bytes(),
        );
        hasher.update([0]);
        hasher.update(std::fs::read(&file).unwrap_or_default());
        hasher.update([0xff]);
    }
    crate::digest::short_hex(hasher, 12)
}

/// Where checkpoint layers are kept in the cache.
pub fn layers_dir(cache: &Path) -> PathBuf {
    cache.join("layers")
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
        host: Option<&str>,
        _from: Option<&Checkpoint>,
    ) -> Result<Box<dyn Environment>, EnvError> {
        if let Some(host) = host {
            return Err(EnvError::HostNeedsRoot(host.to_string()));
        }
        if fixture != EMPTY_FIXTURE {
            return Err(EnvError::FixtureNeedsRoot(fixture.to_string()));
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
