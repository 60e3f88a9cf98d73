#!/usr/bin/env bash
# The main job: set everything up, then boot the default guest (Debian's
# kernel as a Xen PV guest) with a shell on this terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "$(swift build -c release --show-bin-path)/xeno" run "$@"
