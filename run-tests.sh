#!/bin/bash
# Installs what is missing, builds roost twice (release, and with
# AddressSanitizer + UndefinedBehaviorSanitizer) and runs the whole suite,
# unit and integration, on both builds; then runs each fuzz target for a
# minute (FUZZ_SECONDS).
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

# The libFuzzer targets (scripts/fuzz.sh): FUZZ_SECONDS each (default 60,
# so about five minutes and a minute to build); a crash, leak, sanitizer
# report or hang fails the run. FUZZ_SECONDS=0 skips them.
rm -f build-fuzz/fuzz-results
if [ "${FUZZ_SECONDS:-60}" != 0 ]; then
	echo "== fuzz: ${FUZZ_SECONDS:-60}s per target"
	FUZZ_SECONDS=${FUZZ_SECONDS:-60} bash scripts/fuzz.sh || status=1
fi

# One closing line for humans and CI: the counts over both builds and the
# fuzz targets.
/usr/bin/python3 - <<'PY'
import json, os
passed = failed = skipped = 0
if os.environ.get("FUZZ_SECONDS", "60") != "0":
    try:
        with open("build-fuzz/fuzz-results") as f:
            for line in f:
                if line.split()[-1] == "OK":
                    passed += 1
                else:
                    failed += 1
    except FileNotFoundError:
        failed += 1
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
