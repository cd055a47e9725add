//! Kernel modules: whether the kernel has a feature (built in, loaded,
//! installed as a module and not loaded yet, or not at all), and loading
//! the ones it has but has not loaded, as the host's root: a sandbox cannot
//! load modules (seccomp refuses it), and a stock Debian kernel loads most
//! of them only on first use.

use std::process::Command;

use super::host::KernelFacts;
use super::{DoctorError, Notice};
use crate::model::{KernelFeature, STEP_PATH};

/// A module the doctor asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownModule {
    pub name: &'static str,
    /// The kernel configuration symbol that builds it (`y`) or makes it a
    /// module (`m`).
    pub config: &'static str,
    /// The file system it brings, listed in `/proc/filesystems` once there.
    pub filesystem: Option<&'static str>,
}

/// The modules the runner and the book's recipes use.
pub const KNOWN: &[KnownModule] = &[
    KnownModule {
        name: "overlay",
        config: "CONFIG_OVERLAY_FS",
        filesystem: Some("overlay"),
    },
    KnownModule {
        name: "veth",
        config: "CONFIG_VETH",
        filesystem: None,
    },
    KnownModule {
        name: "bridge",
        config: "CONFIG_BRIDGE",
        filesystem: None,
    },
    KnownModule {
        name: "dummy",
        config: "CONFIG_DUMMY",
        filesystem: None,
    },
    KnownModule {
        name: "nf_tables",
        config: "CONFIG_NF_TABLES",
        filesystem: None,
    },
    KnownModule {
        name: "fuse",
        config: "CONFIG_FUSE_FS",
        filesystem: Some("fuse"),
    },
];

/// The modules to load before a run (those the host has but has not
/// loaded): what every sandbox needs and what the book's recipes use.
pub const RUNNER_MODULES: &[&str] = &["veth", "bridge", "nf_tables", "overlay", "fuse", "dummy"];

/// The symbol a kernel without loadable modules leaves unset.
pub const CONFIG_MODULES: &str = "CONFIG_MODULES";

/// The configuration symbol of a known module.
pub fn config_symbol(name: &str) -> Option<&'static str> {
    known(name).map(|m| m.config)
}

fn known(name: &str) -> Option<&'static KnownModule> {
    KNOWN.iter().find(|m| m.name == name)
}

/// Where a module stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleState {
    /// Part of the kernel image.
    BuiltIn,
    Loaded,
    /// Installed as a module and not loaded: [`load_modules`] loads it.
    Available,
    /// The kernel makes it a module, but its file is not installed (the
    /// kernel was upgraded and not rebooted, or its extra modules are a
    /// package of their own).
    NotInstalled,
    /// The kernel has no such thing.
    Absent,
    /// Not loaded, and nothing says whether the kernel has it (no
    /// configuration, no module lists).
    Unknown,
}

impl ModuleState {}

/// Where the module `name` stands, from what is known of the kernel.
pub fn module_state(kernel: &KernelFacts, name: &str) -> ModuleState {
    let facts = &kernel.modules;
    let has = |list: &[String]| list.iter().any(|m| m == name);
    let config = facts
        .config
        .as_ref()
        .map(|c| config_symbol(name).and_then(|symbol| c.get(symbol).map(String::as_str)));
    if has(&facts.loaded) {
        return ModuleState::Loaded;
    }
    let listed_filesystem = known(name)
        .and_then(|m| m.filesystem)
        .is_some_and(|fs| kernel.filesystems.iter().any(|f| f == fs));
    if has(&facts.builtin_sysfs)
        || facts.builtin.as_deref().is_some_and(has)
        || config == Some(Some("y"))
        || listed_filesystem
    {
        return ModuleState::BuiltIn;
    }
    if !facts.loadable {
        // Built in or nothing; the configuration or the list of built-in
        // modules says which.
        return if config.is_some() || facts.builtin.is_some() {
            ModuleState::Absent
        } else {
            ModuleState::Unknown
        };
    }
    match (facts.installed.as_deref().map(has), config) {
        (Some(true), _) => ModuleState::Available,
        (Some(false), Some(Some("m"))) => ModuleState::NotInstalled,
        (None, Some(Some("m"))) => ModuleState::Available,
        (_, Some(_)) => ModuleState::Absent,
        (Some(false), None) if facts.builtin.is_some() => ModuleState::Absent,
        _ => ModuleState::Unknown,
    }
}

/// Why a recipe that requires `feature` cannot run on this kernel, if it
/// cannot: the live kernel is read once per process.
pub fn kernel_lacks(feature: KernelFeature) -> Option<String> {
    static KERNEL: std::sync::OnceLock<KernelFacts> = std::sync::OnceLock::new();
    lacks(KERNEL.get_or_init(KernelFacts::read_live), feature)
}

/// [`kernel_lacks`] on a described kernel. A kernel that may have it (no
/// facts say otherwise) lets the recipe try.
pub fn lacks(kernel: &KernelFacts, feature: KernelFeature) -> Option<String> {
    let name = feature.as_str();
    match module_state(kernel, name) {
        ModuleState::Absent => Some(feature.absent()),
        ModuleState::NotInstalled => Some(format!(
            "{} (it is a module of this kernel, but /lib/modules/{}/ has no {name}.ko)",
            feature.absent(),
            kernel.release
        )),
        ModuleState::Unknown if feature == KernelFeature::Fuse && kernel.dev_fuse => None,
        _ => None,
    }
}

/// The modules of `names` the host has but has not loaded.
pub fn to_load<'a>(kernel: &KernelFacts, names: &[&'a str]) -> Vec<&'a str> {
    names
        .iter()
        .copied()
        .filter(|name| module_state(kernel, name) == ModuleState::Available)
        .collect()
}

/// Loads, as the host's root, the modules of `names` that the host has but
/// has not loaded (`modprobe NAME`), and returns a notice for each, to be
/// shown ("recipes: loading the kernel module veth (a sandbox cannot load
/// modules)"). Modules built in, loaded or absent are left alone (a recipe
/// that requires an absent one is skipped with the reason). Every module
/// is tried; the error names each that failed, in modprobe's words.
pub fn load_modules(names: &[&str]) -> Result<Vec<Notice>, DoctorError> {
    let kernel = KernelFacts::read_live_for(names);
    let wanted = to_load(&kernel, names);
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    if !crate::host::is_root() {
        return Err(DoctorError::Modprobe {
            loaded: Vec::new(),
            failed: wanted
                .iter()
                .map(|name| (name.to_string(), ModprobeError::NotRoot))
                .collect(),
        });
    }
    let mut loaded = Vec::new();
    let mut failed = Vec::new();
    for name in wanted {
        match modprobe(name) {
            Ok(()) => loaded.push(name.to_string()),
            Err(why) => failed.push((name.to_string(), why)),
        }
    }
    if failed.is_empty() {
        Ok(loaded.iter().map(|name| loading(name)).collect())
    } else {
        Err(DoctorError::Modprobe { loaded, failed })
    }
}

/// The notice for a module being loaded.
pub fn loading(name: &str) -> Notice {
    Notice(format!(
        "loading the kernel module {name} (a sandbox cannot load modules)"
    ))
}

/// Why a kernel module was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModprobeError {
    #[error("only root loads kernel modules")]
    NotRoot,
    #[error("modprobe is not installed (apt-get install kmod)")]
    NotInstalled,
    #[error("cannot run modprobe: {0}")]
    Run(std::io::Error),
    /// modprobe's own words.
    #[error("{0}")]
    Said(String),
    /// modprobe failed without a word.
    #[error("modprobe {module} ended with {status}")]
    Ended {
        module: String,
        status: std::process::ExitStatus,
    },
}

/// `modprobe NAME`; on failure its own words.
fn modprobe(name: &str) -> Result<(), ModprobeError> {
    let out = Command::new("modprobe")
        .arg(name)
        .env("PATH", STEP_PATH)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModprobeError::NotInstalled,
            _ => ModprobeError::Run(e),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(if said.is_empty() {
        ModprobeError::Ended {
            module: name.to_string(),
            status: out.status,
        }
    } else {
        ModprobeError::Said(said)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::host::ModuleFacts;

    fn kernel(modules: ModuleFacts) -> KernelFacts {
        KernelFacts {
            release: "6.1.0-28-amd64".into(),
            filesystems: vec!["proc".into(), "ext4".into()],
            dev_fuse: false,
            modules,
            apparmor: None,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn config(pairs: &[(&str, &str)]) -> Option<std::collections::BTreeMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn each_source_of_facts_decides_a_state() {
        let debian = ModuleFacts {
            loadable: true,
            loaded: names(&["bridge"]),
            builtin_sysfs: vec![],
            builtin: Some(vec![]),
            installed: Some(names(&["bridge", "dummy", "veth"])),
            config: config(&[
                ("CONFIG_BRIDGE", "m"),
                ("CONFIG_DUMMY", "m"),
                ("CONFIG_VETH", "m"),
                ("CONFIG_NF_TABLES", "m"),
            ]),
        };
        let monolithic = ModuleFacts {
            loadable: false,
            loaded: vec![],
            builtin_sysfs: names(&["bridge"]),
            builtin: None,
            installed: None,
            config: config(&[("CONFIG_VETH", "y"), ("CONFIG_BRIDGE", "y")]),
        };
        let blind = ModuleFacts {
            loadable: true,
            ..ModuleFacts::default()
        };
        let cases: &[(&ModuleFacts, &str, ModuleState)] = &[
            (&debian, "bridge", ModuleState::Loaded),
            (&debian, "dummy", ModuleState::Available),
            // A module of the kernel whose file is gone (upgraded kernel).
            (&debian, "nf_tables", ModuleState::NotInstalled),
            (&debian, "fuse", ModuleState::Absent),
            (&monolithic, "bridge", ModuleState::BuiltIn),
            (&monolithic, "veth", ModuleState::BuiltIn),
            (&monolithic, "dummy", ModuleState::Absent),
            (&blind, "dummy", ModuleState::Unknown),
        ];
        for (facts, name, want) in cases {
            assert_eq!(
                module_state(&kernel((*facts).clone()), name),
                *want,
                "{name} in {facts:?}"
            );
        }
        // A file system listed in /proc/filesystems is there.
        let mut k = kernel(blind.clone());
        k.filesystems.push("overlay".into());
        assert_eq!(module_state(&k, "overlay"), ModuleState::BuiltIn);
        // Without configuration, the module lists decide.
        let lists = ModuleFacts {
            loadable: true,
            builtin: Some(names(&["veth"])),
            installed: Some(names(&["bridge"])),
            ..ModuleFacts::default()
        };
        assert_eq!(
            module_state(&kernel(lists.clone()), "veth"),
            ModuleState::BuiltIn
        );
        assert_eq!(
            module_state(&kernel(lists.clone()), "bridge"),
            ModuleState::Available
        );
        assert_eq!(module_state(&kernel(lists), "dummy"), ModuleState::Absent);
    }

    #[test]
    fn requirements_are_unmet_only_on_kernels_known_to_lack_them() {
        let monolithic = kernel(ModuleFacts {
            loadable: false,
            config: config(&[("CONFIG_VETH", "y")]),
            ..ModuleFacts::default()
        });
        assert_eq!(lacks(&monolithic, KernelFeature::Veth), None);
        assert_eq!(
            lacks(&monolithic, KernelFeature::Dummy).as_deref(),
            Some("this kernel has no `dummy` link type")
        );
        let mut blind = kernel(ModuleFacts {
            loadable: true,
            ..ModuleFacts::default()
        });
        assert_eq!(lacks(&blind, KernelFeature::Dummy), None);
        blind.dev_fuse = true;
        assert_eq!(lacks(&blind, KernelFeature::Fuse), None);
        let upgraded = kernel(ModuleFacts {
            loadable: true,
            installed: Some(vec![]),
            config: config(&[("CONFIG_DUMMY", "m")]),
            ..ModuleFacts::default()
        });
        assert_eq!(
            lacks(&upgraded, KernelFeature::Dummy).as_deref(),
            Some("this kernel has no `dummy` link type (it is a module of this kernel, but /lib/modules/6.1.0-28-amd64/ has no dummy.ko)")
        );
    }

    #[test]
    fn only_modules_the_host_has_and_has_not_loaded_are_loaded() {
        let k = kernel(ModuleFacts {
            loadable: true,
            loaded: names(&["bridge"]),
            builtin: Some(names(&["overlay"])),
            installed: Some(names(&["bridge", "veth", "nf_tables"])),
            ..ModuleFacts::default()
        });
        assert_eq!(
            to_load(&k, RUNNER_MODULES),
            ["veth", "nf_tables"],
            "bridge is loaded, overlay built in, fuse and dummy absent"
        );
        assert_eq!(
            loading("veth").to_string(),
            "recipes: loading the kernel module veth (a sandbox cannot load modules)"
        );
    }

    #[test]
    fn every_feature_a_recipe_may_require_is_a_known_module() {
        for feature in KernelFeature::ALL {
            assert!(known(feature.as_str()).is_some(), "{feature:?}");
            assert!(RUNNER_MODULES.contains(&feature.as_str()), "{feature:?}");
        }
    }
}
