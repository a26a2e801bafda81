#!/usr/bin/env bash
# Fails when the work tree's `git status` differs from the one recorded in $1: a test (or the
# demo) left a generated file behind, or changed a tracked one.
set -euo pipefail
before=$1
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || exit 0
after=$(git status --porcelain --untracked-files=all)
if [ "$after" != "$(cat "$before")" ]; then
  echo "the test suite changed the work tree (generated files must be ignored or cleaned up):" >&2
  diff <(cat "$before") <(echo "$after") | sed -n 's/^> /  /p' >&2
  exit 1
fi
