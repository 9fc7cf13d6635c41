//! The `lathe` binary: a thin shim over [`lathe_engine::cli`].

fn main() -> std::process::ExitCode {
    lathe_engine::cli::main()
}
