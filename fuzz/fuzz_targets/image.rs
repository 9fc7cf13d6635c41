//! Fuzz target: image header probe, decoding within limits, and resizing.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lathe_engine::fuzz::image(data);
});
