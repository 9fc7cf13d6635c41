//! Fuzz target: project.toml parsing, template and parameter resolution.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lathe_engine::fuzz::project(data);
});
