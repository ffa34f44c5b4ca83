//! Detects whether the tests are built as root, where file permissions are not enforced,
//! so the read-only-directory test can be generated as ignored (`cfg(reliability_as_root)`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(reliability_as_root)");
    println!("cargo::rerun-if-changed=build.rs");
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|effective| effective == "0");
    if root {
        println!("cargo::rustc-cfg=reliability_as_root");
    }
}
