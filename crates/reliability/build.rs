//! Detects whether the tests are built as root (`cfg(reliability_as_root)`): file
//! permissions are not enforced then, so the read-only-directory test is generated as
//! ignored; and only then can the disk-full tests mount their small `tmpfs`, so they are
//! generated as ignored otherwise. The power-cut tests mount a FUSE filesystem, which needs
//! root and `/dev/fuse` (`cfg(reliability_fuse)`); without them they are generated ignored.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(reliability_as_root)");
    println!("cargo::rustc-check-cfg=cfg(reliability_fuse)");
    println!("cargo::rerun-if-changed=build.rs");
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|effective| effective == "0");
    if root {
        println!("cargo::rustc-cfg=reliability_as_root");
        if std::path::Path::new("/dev/fuse").exists() {
            println!("cargo::rustc-cfg=reliability_fuse");
        }
    }
}
