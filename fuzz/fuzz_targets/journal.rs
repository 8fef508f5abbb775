#![no_main]
//! `sauve_fuzz::journal`: see crates/fuzz.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sauve_fuzz::journal(data));
