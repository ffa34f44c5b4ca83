#!/usr/bin/env bash
# Checks that every feature combination of the `swapstore` facade that makes sense compiles:
# no backend, each backend alone, the default (mem), and all of them, with every target
# (lib, bin, examples, tests). `cargo check` only: nothing is linked or run.
#
#   .ci/features.sh          the checks above
#   .ci/features.sh --test   also runs the facade's tests with --features all (the
#                            store-migrate binary between persistent backends, URL dispatch
#                            of every backend; tests on postgres start a throwaway server);
#                            `cargo test --workspace` runs them with the default features
#                            only
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never

run() {
  echo "== $*"
  "$@"
}

run cargo check -p swapstore --all-targets --no-default-features
for backend in mem redb lmdb sled fjall sqlite postgres; do
  run cargo check -p swapstore --all-targets --no-default-features --features "$backend"
done
run cargo check -p swapstore --all-targets
run cargo check -p swapstore --all-targets --features all
run cargo check -p swapstore --all-targets --no-default-features --features "redb sqlite"

if [[ "${1:-}" == "--test" ]]; then
  run cargo test -p swapstore --features all
fi
