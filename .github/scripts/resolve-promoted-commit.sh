#!/usr/bin/env bash
# The commit a `staging` or `prod` tag points at, refused unless it is on main.
#
# Only commits merged to main were reviewed, tested and built in ops; a tag on
# any other commit is stopped here with a message rather than failing later on
# missing images. Run after a checkout of the tag with full history.
# Output: `sha` in $GITHUB_OUTPUT.
set -euo pipefail

tag="${GITHUB_REF_NAME:?GITHUB_REF_NAME is not set}"
commit="$(git rev-parse 'HEAD^{commit}')"

if ! git merge-base --is-ancestor "$commit" origin/main; then
  echo "::error::tag '$tag' points at $commit, which is not on main. Only merged commits are promoted: git tag -f $tag <commit on main> && git push -f origin $tag"
  exit 1
fi
echo "Promoting commit $commit to $tag"
echo "sha=$commit" >> "$GITHUB_OUTPUT"
