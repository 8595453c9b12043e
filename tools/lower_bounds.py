"""Install the project with every runtime dependency at its lowest allowed version and run tests.

``pyproject.toml`` promises that any version its lower bounds allow works (the command line
never shows a traceback for a user's error on any of them). This tool checks the promise: it
makes a fresh virtual environment, installs the checkout with each runtime dependency pinned
to the lower bound it states (``name>=X`` becomes ``name==X``; what they need in turn is
resolved by pip as for a user), adds the test tools, and runs the tests that lean on those
libraries (the command line, the server and its clients, reports and views, the store,
encryption, de-identification, imports and exports).

It needs the package index (run it by hand or before raising a bound, not in CI)::

    python tools/lower_bounds.py                 # the default test selection
    python tools/lower_bounds.py tests/test_views.py -x

Examples
--------
>>> pins = lowest_pins(['orjson>=3.9', 'pydantic>=2.7.4,<3', 'faker'])
>>> pins
['orjson==3.9', 'pydantic==2.7.4']
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]

TESTS = [
    "tests/test_cli_start.py",
    "tests/test_audit_cli.py",
    "tests/test_exercises_cli.py",
    "tests/test_import_export_cli.py",
    "tests/test_views_cli.py",
    "tests/test_writers.py",
    "tests/test_server_api.py",
    "tests/test_server_clients.py",
    "tests/test_server_fhirpy.py",
    "tests/test_server_signin.py",
    "tests/test_server_launch.py",
    "tests/test_reports.py",
    "tests/test_reports_cache.py",
    "tests/test_views.py",
    "tests/test_views_differential.py",
    "tests/test_store.py",
    "tests/test_crypto.py",
    "tests/test_audit_keys.py",
    "tests/test_deid.py",
    "tests/test_synthea_import.py",
]
"""The tests run by default: those that use the dependencies' APIs most."""


def lowest_pins(requirements: list[str]) -> list[str]:
    """``name==X`` for every requirement with a ``>=X`` lower bound (others are left to pip).

    Parameters
    ----------
    requirements : list of str
        PEP 508 requirement strings, as in ``[project] dependencies``.

    Returns
    -------
    list of str
        One pin per requirement that states a lower bound, in the order given.

    Examples
    --------
    >>> lowest_pins(['typer>=0.12.4', 'rich>=13'])
    ['typer==0.12.4', 'rich==13']
    """
    pins = []
    for text in requirements:
        req = Requirement(text)
        lows = [s.version for s in req.specifier if s.operator == ">="]
        if lows:
            pins.append(f"{req.name}=={lows[0]}")
    return pins


def main(argv: list[str] | None = None) -> int:
    """Build the environment, run the tests in it, return pytest's exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments for pytest (test paths and options); the default selection when empty.

    Returns
    -------
    int
        pytest's exit status (0 when every test passed).

    Examples
    --------
    >>> callable(main)
    True
    """
    args = list(sys.argv[1:] if argv is None else argv) or TESTS
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = lowest_pins(project["dependencies"])
    with tempfile.TemporaryDirectory() as tmp:
        env = Path(tmp, "venv")
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        python = str(env / "bin" / "python")
        constraints = Path(tmp, "constraints.txt")
        constraints.write_text("\n".join(pins) + "\n")
        print("lowest allowed versions:", ", ".join(pins), flush=True)
        install = [python, "-m", "pip", "install", "-q", "-c", str(constraints)]
        subprocess.run([*install, f"{ROOT}[dev]"], check=True)
        return subprocess.run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=ROOT
        ).returncode


if __name__ == "__main__":
    sys.exit(main())
