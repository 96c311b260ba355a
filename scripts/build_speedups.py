"""Build masking/_restore.c in place (masking/_restore.*.so): the C pass that restores a JSON answer.

    .venv/bin/python scripts/build_speedups.py

`make run` and `make test` call this. Without a C compiler it says so and exits 0: masking/answers.py
then takes the pure-Python path, which gives the same answers, a little slower.
"""

import contextlib
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    try:
        from setuptools import Distribution, Extension
        from setuptools.command.build_ext import build_ext
    except ImportError:
        print("setuptools is not installed: masking._restore not built (the pure-Python path is used)")
        return 0
    extension = Extension("masking._restore", [str(ROOT / "masking" / "_restore.c")], extra_compile_args=["-O2"])
    command = build_ext(Distribution({"ext_modules": [extension], "script_name": "build_speedups"}))
    command.inplace = True
    command.build_temp = str(ROOT / "var" / "build" / "temp")  # all of setuptools' work under var/
    command.build_lib = str(ROOT / "var" / "build" / "lib")
    command.ensure_finalized()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # setuptools' log of each step
            command.run()
    except Exception as exc:  # no compiler, no Python headers: say so, the Python path still works
        print(f"masking._restore not built ({type(exc).__name__}: {exc}); the pure-Python path is used")
        return 0
    print(f"masking._restore built: {command.get_ext_fullpath('masking._restore')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
