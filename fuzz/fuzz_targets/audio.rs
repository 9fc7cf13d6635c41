//! Fuzz target: the sound path: header probe and streamed decoding (WAV via hound, others via symphonia).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lathe_engine::fuzz::audio(data);
});
