//! The demo's progress bar, quiet when stderr is not a terminal.

pub(super) fn progress_bar(len: u64) -> indicatif::ProgressBar {
    crate::progress::bar(
        len,
        "{elapsed_precise} [{bar:30.cyan/blue}] tick {pos}/{len} {msg}",
    )
}
