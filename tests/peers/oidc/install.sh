#!/usr/bin/env bash
# Install the real OpenID provider (npm `oidc-provider`, a certified
# implementation) into <repo>/.peers/oidc. Idempotent (a stamp records the
# pinned version). Called by tests/peers/setup.sh; start it with server.mjs.
set -euo pipefail
PIN="oidc-provider@9.13.3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
DIR="$ROOT/.peers/oidc"
STAMP="$DIR/.stamp"
NPM="${NPM:-npm}"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$PIN" && -f "$DIR/node_modules/oidc-provider/package.json" ]]; then
  echo "[peers/oidc] up to date: $DIR" >&2
  exit 0
fi
mkdir -p "$DIR"
echo "[peers/oidc] npm install --prefix $DIR $PIN" >&2
"$NPM" install --prefix "$DIR" --no-audit --no-fund --loglevel=error "$PIN" >&2
printf '%s' "$PIN" > "$STAMP"
