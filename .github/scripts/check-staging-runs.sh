#!/usr/bin/env bash
# Stop a prod promotion early unless staging runs the same commit and has proven it.
#
# The prod stack enforces this itself (a StackReference to staging's
# `deployed_commit` and `verification`); checking first gives the clear message
# before any Pulumi operation starts. Inputs (environment): COMMIT, Pulumi backend
# and AWS credentials that can read the staging stack's outputs.
set -euo pipefail

commit="${COMMIT:?COMMIT is not set}"
outputs="$(pulumi stack output --stack staging --json)"
staging="$(python3 -c 'import json, sys; print(json.load(sys.stdin).get("deployed_commit") or "")' <<<"$outputs")"
verified="$(python3 -c 'import json, sys; print((json.load(sys.stdin).get("verification") or {}).get("commit") or "")' <<<"$outputs")"

if [[ -z "$staging" ]]; then
  echo "::error::staging has never been deployed; promote $commit to staging first: git tag -f staging $commit && git push -f origin staging"
  exit 1
fi
if [[ "$staging" != "$commit" ]]; then
  echo "::error::prod only deploys the commit staging runs: staging runs $staging, the prod tag points at $commit. Promote $commit to staging first (git tag -f staging $commit && git push -f origin staging), or move the prod tag to $staging."
  exit 1
fi
if [[ "$verified" != "$commit" ]]; then
  echo "::error::staging runs $commit but has not proven it (no passed verification for it): re-run the staging promotion job for $commit"
  exit 1
fi
echo "staging runs and has proven $commit: promoting it to prod"
