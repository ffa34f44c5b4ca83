//! Every numbered section of `docs/contract.md` is proven somewhere, and the proofs name
//! sections that exist.
//!
//! A conformance test proves a section by starting its doc comment with `§N.M`. A section
//! proven outside the suite (by the reliability harnesses, the benchmark report or the
//! facade's tests) is listed in [`PROVEN_ELSEWHERE`] with the file that proves it, which
//! must name the section as `§N.M`; a section that states no checkable rule (a summary of
//! other sections, a list of type definitions) is listed in [`DESCRIPTIVE`] with the reason.
//! A new section without any of these fails this test, naming it.

// Test code: a failed check is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Sections proven outside the conformance suite, with the file (from the repository
/// root) that proves each.
const PROVEN_ELSEWHERE: &[(&str, &str)] = &[
    ("0.1", "crates/reliability/src/differential/mod.rs"),
    ("0.4", "crates/reliability/src/hostile/inputs.rs"),
    ("0.6", "crates/store-sqlite/tests/sqlite.rs"),
    ("2.3", "crates/reliability/src/hostile/inputs.rs"),
    ("2.4", "crates/reliability/src/hostile/inputs.rs"),
    ("4.7", "crates/benches/src/report/targets.rs"),
    ("8.1", "crates/benches/src/workloads.rs"),
    ("8.2", "crates/benches/src/report/targets.rs"),
    ("9.2", "crates/store/tests/migrate.rs"),
];

/// Sections that state no rule a test could break, and why.
const DESCRIPTIVE: &[(&str, &str)] = &[
    (
        "0.5",
        "a design rule (engine transactions, shared logic in store-api and store-kit): \
         enforced by review and the duplicates check, not by a behaviour",
    ),
    (
        "2.5",
        "a summary table of the range conventions that sections 3 to 6 state and test",
    ),
    (
        "5.1",
        "the side-effect types' definitions, which the compiler checks",
    ),
];

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The `N.M` of every `### N.M` heading of the contract, in order.
fn contract_sections(root: &Path) -> Vec<String> {
    let contract = fs::read_to_string(root.join("docs/contract.md")).unwrap();
    contract
        .lines()
        .filter_map(|line| line.strip_prefix("### "))
        .filter_map(|heading| heading.split_whitespace().next())
        .filter(|number| is_section_number(number))
        .map(str::to_owned)
        .collect()
}

fn is_section_number(text: &str) -> bool {
    let mut parts = text.split('.');
    let (Some(major), Some(minor), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    [major, minor]
        .iter()
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// Every `§N.M` in `text`.
fn cited_sections(text: &str) -> BTreeSet<String> {
    text.split('§')
        .skip(1)
        .filter_map(|after| {
            let number: String = after
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let number = number.trim_end_matches('.');
            is_section_number(number).then(|| number.to_owned())
        })
        .collect()
}

/// The sections the conformance tests name at the start of their doc comments.
fn sections_of_conformance_tests(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in fs::read_dir(root.join("crates/conformance/src")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let source = fs::read_to_string(&path).unwrap();
            for line in source.lines() {
                if let Some(doc) = line.trim_start().strip_prefix("/// §") {
                    out.extend(cited_sections(&format!("§{doc}")));
                }
            }
        }
    }
    out
}

#[test]
fn every_section_is_proven_or_says_why_not() {
    let root = repository_root();
    let sections = contract_sections(&root);
    assert!(
        sections.len() > 40,
        "read only {} sections from docs/contract.md",
        sections.len()
    );
    let tested = sections_of_conformance_tests(&root);
    let mut unproven = Vec::new();
    for section in &sections {
        let elsewhere: Vec<&str> = PROVEN_ELSEWHERE
            .iter()
            .filter(|(number, _)| number == section)
            .map(|(_, file)| *file)
            .collect();
        for file in &elsewhere {
            let text = fs::read_to_string(root.join(file))
                .unwrap_or_else(|e| panic!("§{section} is proven by {file}, unreadable: {e}"));
            assert!(
                cited_sections(&text).contains(section),
                "§{section} is listed as proven by {file}, which does not name §{section}"
            );
        }
        let descriptive = DESCRIPTIVE.iter().any(|(number, _)| number == section);
        if !tested.contains(section) && elsewhere.is_empty() && !descriptive {
            unproven.push(section.clone());
        }
    }
    assert!(
        unproven.is_empty(),
        "sections of docs/contract.md that no test proves (add a conformance test whose doc \
         comment starts with the section, or list the section here with its proof or why \
         it states no rule): {unproven:?}"
    );
}

#[test]
fn proofs_name_sections_that_exist() {
    let root = repository_root();
    let sections: BTreeSet<String> = contract_sections(&root).into_iter().collect();
    let stale: Vec<String> = sections_of_conformance_tests(&root)
        .into_iter()
        .filter(|section| !sections.contains(section))
        .collect();
    assert!(
        stale.is_empty(),
        "conformance tests name sections docs/contract.md does not have: {stale:?}"
    );
    for (section, _) in PROVEN_ELSEWHERE.iter().chain(DESCRIPTIVE) {
        assert!(
            sections.contains(*section),
            "§{section} is listed here but docs/contract.md has no such section"
        );
    }
}

#[test]
fn citations_are_read_as_written() {
    assert_eq!(
        cited_sections("/// §3.7 and §1.6, then §10.12. Not §x or §1."),
        ["1.6", "10.12", "3.7"].map(String::from).into()
    );
    assert!(is_section_number("0.1"));
    assert!(!is_section_number("1"));
    assert!(!is_section_number("1.2.3"));
    assert!(!is_section_number("a.1"));
}
