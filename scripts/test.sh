#!/usr/bin/env bash
# The test suite: fetches the default model if needed, then runs every crate's tests in the
# release profile (the one profile the binary uses too, so burn is compiled once).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-model.sh >/dev/null
cargo test --release --workspace "$@"
