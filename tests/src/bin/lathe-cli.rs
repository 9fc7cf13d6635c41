//! The `lathe` CLI, built inside this test crate so cross-crate tests can run the real command
//! line (`env!("CARGO_BIN_EXE_lathe-cli")`): the same shim as `engine/src/bin/lathe.rs`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    lathe_engine::cli::main()
}
