#!/usr/bin/env bash
# The README's first command: set up, then show what kata-ts sees on this host.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
./bin/kata-ts env
./bin/kata-ts check
