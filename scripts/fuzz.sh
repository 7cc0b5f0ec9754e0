#!/usr/bin/env bash
# scripts/fuzz.sh DURATION — `make fuzz` and `make fuzz-short`: runs every fuzz target of the module
# (each Fuzz* function, found per package with `go test -list '^Fuzz'`, so a new target anywhere is
# picked up without editing anything) for DURATION each (a Go duration: 15s, 2m), one after the other,
# then prints per target the executions run, the new interesting inputs, and what was found.
#
# A failure is a crasher: `go test -fuzz` saves its input under the package's testdata/fuzz/<Target>/,
# where every later `go test` runs it as a regression test; commit it with the fix.
# FUZZ_PARALLEL (default 1) is the number of fuzzing workers per target; FUZZ_TIMEOUT (default 30m) the
# go test -timeout, which ends a run that hangs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

duration=${1:?usage: scripts/fuzz.sh DURATION}
GO=${GO:-go}
parallel=${FUZZ_PARALLEL:-1}
timeout=${FUZZ_TIMEOUT:-30m}

# `go test -list` prints a package's matching names, then "ok <package> <time>".
mapfile -t targets < <("$GO" test -list '^Fuzz' ./... | awk '
	/^Fuzz/ { names[n++] = $1; next }
	/^ok[ \t]/ { for (i = 0; i < n; i++) print $2 " " names[i]; n = 0 }')
if ((${#targets[@]} == 0)); then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
failed=0
summary=()
for entry in "${targets[@]}"; do
	pkg=${entry% *} target=${entry#* }
	log="$logdir/$target.log"
	echo "fuzz: $target ($pkg) for $duration" >&2
	status=ok
	if ! "$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$duration" -parallel "$parallel" \
		-timeout "$timeout" "$pkg" >"$log" 2>&1; then
		status=FAILED failed=1
		cat "$log" >&2
	fi
	last=$(grep -E '^fuzz: elapsed' "$log" | tail -1 || true)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	interesting=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	found=$(sed -nE 's/.*(Failing input written to .*)/\1/p' "$log" | head -1)
	summary+=("$(printf '%-22s %-50s %-7s %12s execs %6s new interesting  %s' \
		"$target" "$pkg" "$status" "${execs:-?}" "${interesting:-?}" "${found:-nothing found}")")
done
printf '%s\n' "fuzz: $duration per target:" "${summary[@]}"
exit "$failed"
