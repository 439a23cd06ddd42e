//! The `conda-fuse` binary: everything is in the library (`conda_fuse::cli`).

fn main() -> std::process::ExitCode {
    conda_fuse::cli::main()
}
