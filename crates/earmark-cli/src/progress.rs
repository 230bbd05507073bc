//! Progress bars on a terminal (indicatif), fed by the library's
//! [`earmark::Progress`] reports; nothing is drawn when standard error is
//! not a terminal.

use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `-q`: no bars at all.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Hides every bar from now on (`-q`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// A progress bar for one command.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A hidden bar, drawn once a stage starts on a terminal.
    pub fn new() -> Self {
        Bar {
            bar: ProgressBar::hidden(),
        }
    }
}

impl earmark::Progress for Bar {
    fn start(&self, stage: &str, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(0);
        if !QUIET.load(Ordering::Relaxed) && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            self.bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{stage} [{{bar:40}}] {{pos}}/{{len}} {{elapsed_precise}} (eta {{eta}})"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    fn advance(&self, steps: u64) {
        self.bar.inc(steps);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
