#!/bin/sh
# Runs each test binary given after the build folder, prints one line per binary and the
# totals; exits non-zero if any binary fails.  Run from the repository root.
build=$1; shift
export SSMLM_BUILD="$build"
passed=0; failed=0; bad=""
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    p=$(printf '%s' "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); p=${p:-0}
    f=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p'); f=${f:-0}
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ $rc -ne 0 ]; then
        bad="$bad $t"
        printf 'FAIL %-40s %s\n' "$t" "$line"
        printf '%s\n' "$out" | grep -v '^[0-9]* passed' | head -n 40
    else
        printf 'ok   %-40s %s\n' "$t" "$line"
    fi
done
echo "$build: $passed passed, $failed failed"
[ -z "$bad" ]
