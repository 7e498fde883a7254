#!/usr/bin/env bash
# Which commit's images a pull request preview of $STACK resolves (PROMOTE_IMAGE_TAG).
#
# A pull request's own images are built only after it merges (`pulumi up --stack ops`
# on main), so the environment stacks cannot preview with the head commit:
#   ops      the head commit (a preview builds nothing and pushes nothing)
#   dev      the commit dev runs now (the base commit if dev was never deployed)
#   staging  the commit staging runs now (the base commit if never deployed)
#   prod     the commit staging runs now: the only commit prod accepts
# so each preview shows what this change does to that environment's infrastructure.
#
# Inputs (environment): STACK, HEAD_SHA, BASE_SHA, and Pulumi backend and AWS
# credentials. Output: `tag` in $GITHUB_OUTPUT.
set -euo pipefail

deployed_commit() {
  pulumi stack output --stack "$1" --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin).get("deployed_commit") or "")'
}

case "$STACK" in
  ops)
    tag="$HEAD_SHA"
    ;;
  dev | staging)
    tag="$(deployed_commit "$STACK")"
    if [[ -z "$tag" ]]; then
      echo "::notice::stack $STACK has no deployed_commit yet; previewing with the images of the base commit $BASE_SHA"
      tag="$BASE_SHA"
    fi
    ;;
  prod)
    tag="$(deployed_commit staging)"
    if [[ -z "$tag" ]]; then
      echo "::error::staging has no deployed_commit: prod only accepts the commit staging runs, so deploy staging first (git tag -f staging <commit> && git push -f origin staging)"
      exit 1
    fi
    ;;
  *)
    echo "::error::unknown stack '$STACK' (expected ops, dev, staging or prod)"
    exit 1
    ;;
esac

if [[ ! "$tag" =~ ^[0-9a-f]{40}$ ]]; then
  echo "::error::image tag for $STACK must be a full commit SHA, got '$tag'"
  exit 1
fi
echo "Previewing $STACK with the images of commit $tag"
echo "tag=$tag" >> "$GITHUB_OUTPUT"
