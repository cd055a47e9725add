//! `recipes`: extracts the tagged blocks of the LXC book and runs them in
//! throwaway rootfs fixtures inside an isolated sandbox.

pub(crate) mod check;
pub(crate) mod checkpoint;
pub mod cli;
mod commands;
pub(crate) mod digest;
pub(crate) mod doctor;
pub(crate) mod duration;
pub(crate) mod env;
pub mod exit;
mod factory;
pub(crate) mod fixture;
pub(crate) mod fsutil;
pub(crate) mod host;
pub(crate) mod matcher;
pub mod model;
pub(crate) mod outcome;
pub mod parse;
pub(crate) mod plan;
pub(crate) mod process;
pub(crate) mod provenance;
pub mod report;
pub(crate) mod runner;
pub mod sandbox;
pub(crate) mod session;
pub(crate) mod site;
pub mod status;
pub(crate) mod workflow;
mod workspace;

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: cli::Cli) -> anyhow::Result<i32> {
    commands::dispatch(cli)
}
