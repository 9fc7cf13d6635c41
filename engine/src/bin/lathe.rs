//! The `lathe` binary: a thin shim over [`lathe_engine::cli`].

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    lathe_engine::cli::main()
}
