#![no_main]
//! `sauve_fuzz::history`: see crates/fuzz.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sauve_fuzz::history(data));
