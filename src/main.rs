fn main() -> std::process::ExitCode {
    conda_fuse::cli::main()
}
