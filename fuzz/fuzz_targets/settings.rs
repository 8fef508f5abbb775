#![no_main]
//! `sauve_fuzz::settings`: see crates/fuzz.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sauve_fuzz::settings(data));
