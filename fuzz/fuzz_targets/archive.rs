#![no_main]
//! `sauve_fuzz::archive`: see crates/fuzz.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sauve_fuzz::archive(data));
