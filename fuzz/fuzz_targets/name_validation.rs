//! Fuzzes name validation (`check_name`, `Book::new`, `AssetId::new`, `AccountPath::new`):
//! see `reliability::fuzz_bodies::name_validation`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(failure) = reliability::fuzz_bodies::name_validation(data) {
        panic!("{failure}");
    }
});
