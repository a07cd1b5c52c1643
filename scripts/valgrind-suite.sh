#!/bin/bash
# Runs the integration suite's main flows with roostd under valgrind
# (memcheck): invalid reads and writes, uses of uninitialised memory and
# leaks (definite and indirect) make roostd exit 99, which fails the test
# that stops it. Not part of run-tests.sh: valgrind makes roostd 20-50x
# slower, so this takes several minutes.
#
#   scripts/valgrind-suite.sh                     # the main flows
#   scripts/valgrind-suite.sh tests/integration/test_offline.py -k quota
#
# Arguments are handed to pytest (default: the files below). roostctl
# runs natively. Reports are in each test server's log (kept with
# ROOST_TEST_KEEP=1) and in build-valgrind/valgrind-*.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=build-valgrind

bash scripts/install-deps.sh
[ -d "$dir" ] || meson setup "$dir" -Dtests=false >/dev/null
ninja -C "$dir" src/roostd tools/roostctl

rm -f "$dir"/valgrind-*.log
wrapper=$dir/roostd-valgrind
cat >"$wrapper" <<SH
#!/bin/sh
exec valgrind --quiet --error-exitcode=99 --leak-check=full \\
	--show-leak-kinds=definite,indirect \\
	--errors-for-leak-kinds=definite,indirect \\
	--track-fds=no --num-callers=30 \\
	--log-file=$root/$dir/valgrind-%p.log \\
	$root/$dir/src/roostd "\$@"
SH
chmod +x "$wrapper"

if [ $# -eq 0 ]; then
	set -- tests/integration/test_streams.py tests/integration/test_sasl.py \
		tests/integration/test_messages.py tests/integration/test_presence.py \
		tests/integration/test_roster.py tests/integration/test_session.py \
		tests/integration/test_offline.py tests/integration/test_shutdown.py
fi

status=0
ROOSTD=$root/$wrapper ROOSTCTL=$root/$dir/tools/roostctl \
	ROOST_TEST_VALGRIND=1 \
	/usr/bin/python3 -m pytest -q -p no:cacheprovider "$@" || status=1

# A report with errors in it, even from a server whose test passed.
for f in "$dir"/valgrind-*.log; do
	[ -s "$f" ] || continue
	if grep -q "ERROR SUMMARY: [1-9]\|definitely lost: [1-9]\|Invalid \(read\|write\)" "$f"; then
		echo "valgrind: errors in $f" >&2
		status=1
	fi
done
[ $status -eq 0 ] && echo "valgrind: clean"
exit $status
