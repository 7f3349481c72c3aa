#!/usr/bin/env bash
# Fails when the exported library is out of sync with the notebooks, a notebook is not clean,
# or README.md is not the rendering of nbs/index.ipynb. Works on a copy: the checkout is never modified.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r "$top/settings.ini" "$top/nbs" "$top/sereval" "$top/README.md" "$top/scripts" "$tmp/"
cd "$tmp"
nbdev_export >/dev/null
nbdev_clean >/dev/null
python scripts/make_readme.py >/dev/null
status=0
diff -r -q -x __pycache__ "$top/sereval" sereval || { echo "FAIL: sereval/ is out of sync with nbs/: run nbdev_export"; status=1; }
diff -r -q -x .ipynb_checkpoints "$top/nbs" nbs || { echo "FAIL: notebooks are not clean: run nbdev_clean"; status=1; }
diff -q "$top/README.md" README.md || { echo "FAIL: README.md is not generated from nbs/index.ipynb: run make readme"; status=1; }
[ $status = 0 ] && echo "ok: library in sync, notebooks clean, README generated"
exit $status
