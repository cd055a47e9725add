//! The sandbox: one per recipe run, private mount, PID, network, UTS, IPC
//! and cgroup namespaces held by a re-exec'd helper that is their PID 1.
//! Steps enter it through another re-exec (`__enter`). When the recipe ends
//! the helper's control pipe closes, PID 1 exits and the kernel takes every
//! process, mount and network device of the run with it. Linux code lives
//! here; this module never reads Markdown.

pub mod cgroup;
pub mod helper;
pub mod linux;
pub mod plan;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::model::Where;
use crate::runner::{Environment, StepProgram};
pub use plan::SandboxSpec;

/// A running sandbox.
pub struct Sandbox {
    helper: Option<Child>,
    control: Option<ChildStdin>,
    pid1: i32,
    exe: PathBuf,
    rootfs: String,
    keep: Option<PathBuf>,
    cgroup: Option<PathBuf>,
}

impl Sandbox {
    /// Starts the helper and waits until the sandbox is built.
    pub fn start(mut spec: SandboxSpec, exe: PathBuf) -> Result<Sandbox, String> {
        spec.parent = std::process::id() as i32;
        spec.cgroup = cgroup::create();
        let json = serde_json::to_string(&spec).map_err(|e| e.to_string())?;
        let mut child = Command::new(&exe)
            .args(["__sandbox", "--spec", &json])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the sandbox helper {}: {e}", exe.display()))?;
        let mut sandbox = Sandbox {
            control: child.stdin.take(),
            pid1: 0,
            exe,
            rootfs: plan::rootfs_path(&spec),
            keep: spec.keep.clone(),
            cgroup: spec.cgroup.clone(),
            helper: None,
        };
        let stdout = child.stdout.take().expect("piped");
        sandbox.helper = Some(child);
        // `pid N` (from the helper) and `ready` (from PID 1) come in any order.
        let mut ready = false;
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("sandbox helper: {e}"))?;
            if let Some(pid) = line.strip_prefix("pid ") {
                sandbox.pid1 = pid
                    .parse()
                    .map_err(|_| format!("sandbox helper said {line:?}"))?;
            } else if line == "ready" {
                ready = true;
            } else if let Some(message) = line.strip_prefix("error: ") {
                return Err(message.to_string());
            }
            if ready && sandbox.pid1 > 0 {
                return Ok(sandbox);
            }
        }
        Err("the sandbox helper ended before the sandbox was ready".into())
    }

    fn stop(&mut self) -> Result<(), String> {
        drop(self.control.take());
        if let Some(mut helper) = self.helper.take() {
            helper
                .wait()
                .map_err(|e| format!("waiting for the sandbox: {e}"))?;
        }
        if let Some(dir) = self.cgroup.take() {
            cgroup::remove(&dir)
                .map_err(|e| format!("cannot remove the cgroup {}: {e}", dir.display()))?;
        }
        Ok(())
    }
}

impl Environment for Sandbox {
    fn rootfs(&self) -> String {
        self.rootfs.clone()
    }

    fn command(&self, step: &StepProgram) -> Result<Command, String> {
        let mut command = Command::new(&self.exe);
        command
            .arg("__enter")
            .arg("--pid")
            .arg(self.pid1.to_string())
            .arg("--cwd")
            .arg(plan::SCRATCH);
        if step.where_ == Where::Chroot {
            command.arg("--chroot").arg(&self.rootfs);
        }
        command.arg("--").arg(&step.program).args(&step.args);
        Ok(command)
    }

    fn close(mut self: Box<Self>) -> Result<Option<PathBuf>, String> {
        self.stop()?;
        Ok(self.keep.take())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(helper) = self.helper.as_mut() {
            let _ = helper.kill();
        }
        let _ = self.stop();
    }
}
