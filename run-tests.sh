#!/bin/bash
# Installs what is missing, builds roost twice (release, and with
# AddressSanitizer + UndefinedBehaviorSanitizer) and runs the whole suite,
# unit and integration, on both builds.
set -euo pipefail
cd "$(dirname "$0")"

bash scripts/install-deps.sh

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

status=0
for variant in release asan; do
	dir=build-test-$variant
	if [ ! -d "$dir" ]; then
		if [ $variant = asan ]; then
			meson setup "$dir" -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
		else
			meson setup "$dir" >/dev/null
		fi
	fi
	ninja -C "$dir"
	echo "== $variant: meson test"
	meson test -C "$dir" --print-errorlogs --num-processes 2 || status=1
done

# One closing line for humans and CI: the counts over both builds.
/usr/bin/python3 - <<'PY'
import json
passed = failed = skipped = 0
for v in ("release", "asan"):
    try:
        with open(f"build-test-{v}/meson-logs/testlog.json") as f:
            for line in f:
                r = json.loads(line)["result"]
                if r in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif r == "SKIP":
                    skipped += 1
                else:
                    failed += 1
    except FileNotFoundError:
        failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
