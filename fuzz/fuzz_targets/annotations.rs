//! Fuzz target: object-detection annotations (Create ML and COCO JSON).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lathe_engine::fuzz::annotations(data);
});
