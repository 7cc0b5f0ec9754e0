#!/usr/bin/env bash
# scripts/asyncapi.sh — the AsyncAPI CLI (npm @asyncapi/cli, version pinned below), installed on
# first use under .state/tools/asyncapi and run from there; offline once installed.
#
#   scripts/asyncapi.sh install              install the pinned CLI unless it is there (idempotent)
#   scripts/asyncapi.sh validate [FILE]      validate FILE (default contracts/asyncapi.yaml); exit 1 on
#                                            any error or warning
#   scripts/asyncapi.sh ARGS...              any other command, e.g. bundle contracts/asyncapi.yaml -o x.yaml
#
# Version: 6.2.0, the newest release. Its package.json asks for Node >= 24 and the machines have
# Node 20: npm warns, and `validate`, the command make uses, was checked to work on Node 20.20.
# The newest release that accepts Node 20, 4.1.1, is 1.5 GB installed (6.2.0: 440 MB) and pulls a
# dependency that asks for Node 24 too; both validate with the same parser (@asyncapi/parser 3.6.6).
# Neither checks the Avro inside a 3.0 document (asyncapi/cli#1813): contracts/asyncapi_test.go does.
# The CLI's usage metrics are switched off (a settings file of its own, not ~/.asyncapi-analytics).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=6.2.0
dir="$STATE_DIR/tools/asyncapi"
bin="$dir/node_modules/.bin/asyncapi"
export ASYNCAPI_METRICS_CONFIG_PATH="$dir/analytics.json" SUPPRESS_NO_CONFIG_WARNING=1

installed() { [[ -x "$bin" && "$(cat "$dir/.version" 2>/dev/null)" == "$VERSION" ]]; }

install() {
  installed && return 0
  command -v npm >/dev/null || die "npm not found: install Node.js (with npm) to validate the AsyncAPI document"
  mkdir -p "$dir"
  exec 9>"$dir.lock"
  flock 9
  installed && return 0
  log "installing @asyncapi/cli@$VERSION into $dir (once; about 440 MB)"
  rm -rf "$dir/node_modules" "$dir/.version"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "@asyncapi/cli@$VERSION" >&2 ||
    die "npm install @asyncapi/cli@$VERSION failed"
  echo "$VERSION" >"$dir/.version"
}

install
[[ -f "$ASYNCAPI_METRICS_CONFIG_PATH" ]] ||
  echo '{"analyticsEnabled":"false","infoMessageShown":"true","userID":"none"}' >"$ASYNCAPI_METRICS_CONFIG_PATH"

case "${1:-}" in
  install) exit 0 ;;
  validate)
    shift
    # stdin from /dev/null: the CLI otherwise may wait on it.
    exec "$bin" validate "${1:-$REPO_DIR/contracts/asyncapi.yaml}" --fail-severity warn "${@:2}" </dev/null ;;
  "") die "usage: scripts/asyncapi.sh install | validate [FILE] | ARGS..." ;;
  *) exec "$bin" "$@" ;;
esac
