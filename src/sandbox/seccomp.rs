//! The seccomp filter every step runs under, with `no_new_privs`: what the
//! user namespace does not already refuse, or what reaches past it. It
//! follows the deny lists LXC and bubblewrap ship (kernel modules, kexec,
//! keyrings, BPF, perf, `open_by_handle_at`, terminal injection) and leaves
//! what LXC itself needs inside (mount, unshare, pivot_root, reboot of a
//! PID namespace). Denied calls fail with EPERM, the kernel's own answer.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// System calls refused outright.
const DENIED: &[(&str, libc::c_long)] = &[
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("acct", libc::SYS_acct),
    ("quotactl", libc::SYS_quotactl),
    #[cfg(target_arch = "x86_64")]
    ("iopl", libc::SYS_iopl),
    #[cfg(target_arch = "x86_64")]
    ("ioperm", libc::SYS_ioperm),
];

/// `ioctl` requests refused: typing into a terminal the step does not own.
const DENIED_IOCTLS: &[u64] = &[libc::TIOCSTI, libc::TIOCLINUX];

/// Why the filter could not be built or installed.
#[derive(Debug, thiserror::Error)]
#[error("seccomp: {0}")]
pub struct SeccompError(String);

/// Builds the filter for this machine's architecture.
pub fn filter() -> Result<BpfProgram, SeccompError> {
    let err = |e: seccompiler::BackendError| SeccompError(e.to_string());
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|(_, nr)| (*nr, Vec::new())).collect();
    let ioctls = DENIED_IOCTLS
        .iter()
        .map(|request| {
            SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, *request)
                .and_then(|c| SeccompRule::new(vec![c]))
                .map_err(err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_ioctl, ioctls);
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e: seccompiler::BackendError| SeccompError(e.to_string()))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(err)?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| SeccompError(e.to_string()))
}

/// Sets `no_new_privs` and installs `program` on the calling thread.
pub fn install(program: &BpfProgram) -> Result<(), SeccompError> {
    seccompiler::apply_filter(program).map_err(|e| SeccompError(e.to_string()))
}

/// Installs the filter without setting `no_new_privs`, which the kernel
/// allows to a process with `CAP_SYS_ADMIN` in its user namespace (the
/// sandbox's root): set-user-ID programs then still work, up to the
/// sandbox's root. For a booted host, whose own `newuidmap` is what lets
/// an unprivileged user start containers.
pub fn install_keeping_setuid(program: &BpfProgram) -> Result<(), SeccompError> {
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len())
            .map_err(|_| SeccompError("the filter is too long".into()))?,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points into `program`, alive for the call; the kernel
    // copies the filter.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(SeccompError(format!(
            "cannot install the seccomp filter: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// The names of the refused system calls, for the documentation and tests.
pub fn denied_names() -> impl Iterator<Item = &'static str> {
    DENIED.iter().map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_builds_for_this_machine() {
        let program = filter().unwrap();
        assert!(program.len() > DENIED.len(), "{}", program.len());
        assert!(denied_names().any(|n| n == "kexec_load"));
    }

    #[test]
    fn a_filtered_child_gets_eperm_and_its_parent_is_untouched() {
        // In a forked child: keyctl is refused, ordinary calls are not.
        let program = filter().unwrap();
        // SAFETY: the child only makes system calls and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code = if install(&program).is_err() {
                    2
                } else {
                    // SAFETY: keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0).
                    let rc = unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) };
                    let errno = std::io::Error::last_os_error().raw_os_error();
                    if rc == -1 && errno == Some(libc::EPERM) && unsafe { libc::getpid() } > 0 {
                        0
                    } else {
                        1
                    }
                };
                // SAFETY: leaving the forked child without running destructors.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
        // The test process itself was never filtered.
        // SAFETY: same keyctl call, harmless.
        let rc = unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) };
        assert!(
            rc >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM),
            "keyctl refused in the parent"
        );
    }
}
