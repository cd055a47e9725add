//! `recipes`: extracts the tagged blocks of the LXC book and runs them in
//! throwaway rootfs fixtures inside an isolated sandbox.

pub mod check;
pub mod checkpoint;
pub mod cli;
mod commands;
pub mod digest;
pub mod doctor;
pub mod duration;
pub mod env;
pub mod exit;
mod factory;
pub mod fixture;
pub mod fsutil;
pub mod host;
pub mod matcher;
pub mod model;
pub mod outcome;
pub mod parse;
pub mod plan;
pub mod process;
pub mod provenance;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod session;
pub mod site;
pub mod status;
pub mod workflow;
mod workspace;

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: cli::Cli) -> anyhow::Result<i32> {
    commands::dispatch(cli)
}
