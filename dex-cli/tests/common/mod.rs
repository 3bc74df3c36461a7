//! Helpers shared by the command-line tests.

use std::process::{Command, Output};

/// Runs the `dex` binary built for these tests with `args`.
pub fn dex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dex"))
        .args(args)
        .output()
        .expect("dex runs")
}
