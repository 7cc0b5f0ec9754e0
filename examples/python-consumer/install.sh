#!/usr/bin/env bash
# Makes the Python consumer's virtualenv, idempotently, and prints its path.
#
# VENV (default: <repo>/.state/tools/python-consumer) is (re)built with python3 -m venv and
# requirements.txt when it is missing or was made from another requirements.txt (its sha256 is
# kept in $VENV/.requirements.sha256). Otherwise nothing is fetched: it works offline. Packages
# come from PyPI through pip as configured on the machine. A lock serialises concurrent runs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${VENV:-$root/.state/tools/python-consumer}
python=${PYTHON:-python3}

want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
ready() { [[ -x $venv/bin/python && "$(cat "$venv/.requirements.sha256" 2>/dev/null)" == "$want" ]]; }

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if ! ready; then
	command -v "$python" >/dev/null || { echo "install.sh: $python not found (Python 3.9 or newer is needed)" >&2; exit 1; }
	echo "install.sh: making $venv from requirements.txt" >&2
	rm -rf "$venv"
	"$python" -m venv "$venv"
	"$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$here/requirements.txt" >&2
	echo "$want" >"$venv/.requirements.sha256"
fi
echo "$venv"
