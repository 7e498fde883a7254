#!/usr/bin/env bash
# Stop a prod promotion early unless staging runs the same commit.
#
# The prod stack enforces this itself (a StackReference to staging's
# `deployed_commit`); checking first gives the clear message before any
# Pulumi operation starts. Inputs (environment): COMMIT, Pulumi backend and
# AWS credentials that can read the staging stack's outputs.
set -euo pipefail

commit="${COMMIT:?COMMIT is not set}"
staging="$(
  pulumi stack output --stack staging --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin).get("deployed_commit") or "")'
)"

if [[ -z "$staging" ]]; then
  echo "::error::staging has never been deployed; promote $commit to staging first: git tag -f staging $commit && git push -f origin staging"
  exit 1
fi
if [[ "$staging" != "$commit" ]]; then
  echo "::error::prod only deploys the commit staging runs: staging runs $staging, the prod tag points at $commit. Promote $commit to staging first (git tag -f staging $commit && git push -f origin staging), or move the prod tag to $staging."
  exit 1
fi
echo "staging runs $commit: promoting it to prod"
