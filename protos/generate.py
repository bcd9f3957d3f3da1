"""Generate the Python modules for protos/hotspot/v1/*.proto.

`make proto` writes them to client/hotspot/v1 (committed; the client distribution ships them); the
staleness test writes them to a temporary directory and compares.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
OUT = PROTO_ROOT.parent / "client"
"""The generated modules live in the client distribution, which ships them."""


def generate(out_dir: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.glob("hotspot/**/*.proto"))
    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    # The mypy plugins sit beside this interpreter, which need not be on PATH.
    scripts = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={scripts / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={scripts / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    generate(parser.parse_args().out)


if __name__ == "__main__":
    main()
