#![no_main]
//! `sauve_fuzz::http`: see crates/fuzz.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sauve_fuzz::http(data));
