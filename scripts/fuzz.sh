#!/bin/bash
# Builds the libFuzzer targets (fuzz/, clang with ASan and UBSan) in
# build-fuzz and runs each for FUZZ_SECONDS (default 60) from its seed
# corpus in fuzz/corpus/<target>. Exits non-zero if any target crashes,
# leaks, trips a sanitizer or times out; the input that did it is left
# in build-fuzz/fuzz-artifacts/ (reproduce: build-fuzz/fuzz/fuzz_<target>
# <file>).
#
#   scripts/fuzz.sh                       # every target, 60 s each (CI)
#   FUZZ_SECONDS=3600 scripts/fuzz.sh xml_parser sasl   # longer, some
#   FUZZ_JOBS=4 FUZZ_SECONDS=86400 scripts/fuzz.sh seal # a day, 4 jobs
#
# New interesting inputs go to build-fuzz/fuzz-corpus/<target> (kept
# between runs, never committed); to grow the committed seeds, merge a few
# small ones: build-fuzz/fuzz/fuzz_<t> -merge=1 fuzz/corpus/<t> DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
dir=${FUZZ_BUILD:-build-fuzz}
all=(xml_parser sasl jid config seal)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

if ! command -v clang >/dev/null; then
	echo "fuzz.sh: clang is missing (scripts/install-deps.sh installs it)" >&2
	exit 1
fi
if [ ! -d "$dir" ]; then
	CC=clang meson setup "$dir" -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C "$dir" $(printf 'fuzz/fuzz_%s ' "${targets[@]}")

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

status=0
results=$dir/fuzz-results   # "target OK|FAILED" per line, for run-tests.sh
: >"$results"
for t in "${targets[@]}"; do
	work=$dir/fuzz-corpus/$t
	art=$dir/fuzz-artifacts
	mkdir -p "$work" "$art"
	extra=()
	[ -f "fuzz/$t.dict" ] && extra+=("-dict=$root/fuzz/$t.dict")
	# With -jobs libFuzzer forks workers that log to fuzz-N.log in the
	# current directory: run from the build directory.
	[ "$jobs" -gt 1 ] && extra+=("-jobs=$jobs" "-workers=$jobs")
	# The walk compares chains it recomputed over the input with plain
	# memcmp; libFuzzer's comparison hooks would hand it those MACs and
	# let it "forge" records no attacker without the seal key can (see
	# fuzz/fuzz_seal.c).
	[ "$t" = seal ] && extra+=("-use_cmp=0")
	echo "== fuzz_$t: ${seconds}s"
	if ! (cd "$dir" && "./fuzz/fuzz_$t" "${extra[@]}" \
		-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-max_len=65536 -print_final_stats=1 \
		-artifact_prefix="$root/$art/$t-" "$root/$work" \
		"$root/fuzz/corpus/$t") >"$dir/fuzz-$t.log" 2>&1; then
		echo "fuzz_$t FAILED; log: $dir/fuzz-$t.log" >&2
		grep -E "ERROR|SUMMARY|artifact|Test unit written" "$dir/fuzz-$t.log" | head -20 >&2 || true
		echo "$t FAILED" >>"$results"
		status=1
	else
		echo "$t OK" >>"$results"
		grep -E "^stat::number_of_executed_units|^stat::new_units_added" \
			"$dir/fuzz-$t.log" | tr '\n' ' '
		echo
	fi
done
exit $status
