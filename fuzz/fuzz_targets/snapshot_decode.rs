//! Fuzzes `StateSnapshot::from_bytes`: see `reliability::fuzz_bodies::snapshot_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(failure) = reliability::fuzz_bodies::snapshot_decode(data) {
        panic!("{failure}");
    }
});
