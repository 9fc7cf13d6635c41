//! The `lathe` binary: a thin shim over [`lathe_engine::cli`].

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    lathe_engine::allocator::tune();
    lathe_engine::cli::main()
}
