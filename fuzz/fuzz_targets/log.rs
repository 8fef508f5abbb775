#![no_main]
//! `sauve_fuzz::log`: see crates/fuzz.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sauve_fuzz::log(data));
