#![no_main]
//! `sauve_fuzz::restore`: see crates/fuzz.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sauve_fuzz::restore(data));
