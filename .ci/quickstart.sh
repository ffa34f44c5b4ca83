#!/usr/bin/env bash
# Builds and runs the README's quick start as a user would: a new crate outside the
# workspace whose Cargo.toml gets the README's `[dependencies]` block (its path pointed at
# this checkout) and whose main.rs is the README's first Rust block.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "${scratch}"' EXIT

# The first ```toml block and the first ```rust block under "## Quick start".
extract() {
  awk -v lang="$1" '
    /^## Quick start/ { in_section = 1; next }
    in_section && /^## / { exit }
    in_section && !done && $0 == "```" lang { in_block = 1; next }
    in_block && $0 == "```" { in_block = 0; done = 1; next }
    in_block { print }
  ' "${repo}/README.md"
}

deps="$(extract toml)"
code="$(extract rust)"
if [[ -z "${deps}" || -z "${code}" ]]; then
  echo "error: README.md's quick start has no \`\`\`toml or no \`\`\`rust block" >&2
  exit 1
fi
if ! grep -q 'path = "[^"]*crates/store"' <<<"${deps}"; then
  echo "error: the quick start's dependency line no longer names a path to crates/store;" \
       "update .ci/quickstart.sh with it" >&2
  exit 1
fi

mkdir -p "${scratch}/src"
{
  printf '[package]\nname = "quickstart"\nversion = "0.1.0"\nedition = "2024"\n\n'
  sed -E "s#path = \"[^\"]*crates/store\"#path = \"${repo}/crates/store\"#" <<<"${deps}"
} > "${scratch}/Cargo.toml"
printf '%s\n' "${code}" > "${scratch}/src/main.rs"
# The workspace's lock file, so the scratch crate builds the versions CI already built.
cp "${repo}/Cargo.lock" "${scratch}/Cargo.lock"

echo "== README quick start, as a new crate (${scratch})"
cat "${scratch}/Cargo.toml"
CARGO_TARGET_DIR="${repo}/target" cargo run --quiet --manifest-path "${scratch}/Cargo.toml"
echo "README quick start: built and ran"
