//! The `sidrec` binary; everything lives in [`sidrec::cli`].

fn main() -> std::process::ExitCode {
    sidrec::cli::main()
}
