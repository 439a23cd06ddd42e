//! Progress bars on a terminal (hidden otherwise) and human-readable sizes.

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over `total_bytes` that also counts entries in its message.
pub fn bytes_bar(verb: &str, total_bytes: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{verb} {{msg}} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} ETA {{eta}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

pub fn bytes(n: u64) -> String {
    HumanBytes(n).to_string()
}
