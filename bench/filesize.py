"""Run-file size: the chain's file as the store writes it, against the same file ``h5repack``ed.

The store streams every step in SWMR mode into chunked, resizable datasets, so some slack is
the price of crash safety (a chunk may be larger than the data in it, space freed by structure
changes is not reused). ``h5repack`` rewrites the file with the same content; by default it
keeps each dataset's chunk shape, so the target is taken against the stricter reference,
``h5repack -f NONE -l CONTI`` (contiguous datasets, no filters: data and metadata only). The
ratio says how much of the file is slack. Target (issue 15): at most 1.5.

Needs ``h5repack`` from the HDF5 command-line tools (Debian/Ubuntu: ``apt-get install -y
hdf5-tools``; conda: ``conda install hdf5``). Runs the chain once on the twin (about 15 s).
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def chain_file(out: Path, station: Path) -> Path:
    from rich.console import Console

    from hil.experiment import find
    from hil.runner import execute

    execute(find("chain"), station, out, {}, console=Console(file=io.StringIO()), force=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--station", type=Path, default=ROOT / "stations" / "twin.yaml")
    parser.add_argument("--keep", type=Path, default=None, help="copy the run file here")
    args = parser.parse_args()
    repack = shutil.which("h5repack")
    if repack is None:
        print("h5repack not found: install the HDF5 tools (Debian/Ubuntu: apt-get install -y "
              "hdf5-tools; conda: conda install hdf5)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="hil-filesize-") as tmp:
        run = chain_file(Path(tmp) / "chain.h5", args.station)
        sizes = {}
        # As h5repack rewrites it by default (chunk shapes and checksums kept), and compacted
        # (every dataset contiguous, no filters): the smallest file holding the same content.
        for name, options in (("h5repack", []), ("compact", ["-f", "NONE", "-l", "CONTI"])):
            packed = Path(tmp) / f"{name}.h5"
            subprocess.run([repack, *options, str(run), str(packed)], check=True)
            sizes[name] = packed.stat().st_size
        written = run.stat().st_size
        if args.keep:
            shutil.copyfile(run, args.keep)
    print(f"chain run file: {written / 1e6:.2f} MB as written; {sizes['h5repack'] / 1e6:.2f} MB "
          f"after h5repack; {sizes['compact'] / 1e6:.2f} MB after h5repack -f NONE -l CONTI")
    plain, ratio = written / sizes["h5repack"], written / sizes["compact"]
    print(f"ratio written / h5repack: {plain:.2f}")
    print(f"ratio written / compact:  {ratio:.2f} (target <= 1.5) "
          f"{'ok' if ratio <= 1.5 else 'OVER TARGET'}")
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
