//! Fuzz target: CSV / JSON-lines / JSON tables, text datasets and multi-label labels files.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lathe_engine::fuzz::table(data);
});
