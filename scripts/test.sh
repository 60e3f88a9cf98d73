#!/usr/bin/env bash
# The test command: set everything up, then run every test. Where /dev/kvm
# exists and we are root, a test that skips for want of KVM, root or the kit
# is a failure (XENOLITH_REQUIRE_KVM=1, which .ci/run sets). Tests that need
# the other kind of KVM than this host's (hardware-assisted or software-
# nested) skip with that reason.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
log=$(mktemp)
status=0
swift test 2>&1 | tee "$log" || status=$?
if [ "${XENOLITH_REQUIRE_KVM:-0}" = 1 ] && [ -e /dev/kvm ] && [ "$(id -u)" = 0 ]; then
    # Skips for a missing /dev/kvm, root or kit fail here. A test for the
    # other kind of KVM (hardware-assisted vs software-nested) names that
    # reason instead and stays a skip.
    missing='skipped: .*(needs /dev/kvm|needs root|needs the guest kit|needs xenstore-utils)'
    if grep -E "$missing" "$log" >/dev/null; then
        echo "test: tests were skipped on a machine that has /dev/kvm and root:" >&2
        grep -E "$missing" "$log" >&2
        status=1
    fi
fi
rm -f "$log"
exit $status
