#!/usr/bin/env python3
"""Compare the result matrices of two demo outputs byte for byte: `scripts/compare_demo.py OUT_A OUT_B`.

Every `matrices/**/*.csv` of either folder is compared with the file of the same relative path in the other one.
Prints one line per differing or missing file, then a summary; exits 0 when every file is identical, 1 otherwise.
The evidence of issue 9: the offline demo's matrices before and after the redesign are byte-identical."""
import sys
from pathlib import Path


def compare(a: Path, b: Path) -> tuple[list[str], list[str], list[str]]:
    "(identical, different, missing) relative paths of the matrices under `a` and `b`."
    files = sorted({p.relative_to(d).as_posix() for d in (a, b) for p in (d/'matrices').rglob('*.csv')})
    same, diff, missing = [], [], []
    for f in files:
        pa, pb = a/f, b/f
        if not (pa.exists() and pb.exists()): missing.append(f)
        elif pa.read_bytes() == pb.read_bytes(): same.append(f)
        else: diff.append(f)
    return same, diff, missing


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    a, b = map(Path, argv)
    for d in (a, b):
        if not (d/'matrices').is_dir():
            print(f'{d}/matrices is not a folder', file=sys.stderr)
            return 2
    same, diff, missing = compare(a, b)
    for f in diff: print(f'DIFFERENT {f}')
    for f in missing: print(f'MISSING   {f} (only in {a if (a/f).exists() else b})')
    ok = bool(same) and not diff and not missing
    print(f'{len(same)} matrices identical, {len(diff)} different, {len(missing)} missing: '
          + ('byte-identical' if ok else 'NOT identical'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
