#!/bin/sh
# Keep notebook outputs out of git: register nbstripout as the clean filter that
# .gitattributes names for notebooks/*.ipynb (the nbval references under tests/ keep theirs).
# Usage: scripts/git_filters.sh PYTHON   (run inside the git checkout; `make setup` does it)
set -eu
PY=${1:-.venv/bin/python}
git rev-parse --git-dir >/dev/null 2>&1 || exit 0   # not a git checkout: nothing to do
git config filter.nbstripout.clean "'$PY' -m nbstripout --keep-id"
git config filter.nbstripout.smudge cat
git config diff.ipynb.textconv "'$PY' -m nbstripout --keep-id -t"
