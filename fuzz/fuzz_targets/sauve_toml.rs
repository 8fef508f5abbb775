#![no_main]
//! `sauve_fuzz::sauve_toml`: see crates/fuzz.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sauve_fuzz::sauve_toml(data));
