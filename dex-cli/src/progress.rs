//! Progress bars on stderr, hidden when stderr is not a terminal (logs, pipes, tests).

use std::io::IsTerminal;

/// A bar of `len` steps drawn with indicatif's `template`.
pub(crate) fn bar(len: u64, template: &str) -> indicatif::ProgressBar {
    if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(len);
        b.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    }
}
