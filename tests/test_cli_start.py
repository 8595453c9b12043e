"""The command line loads only the module of the command it runs, and every command is routed."""

from __future__ import annotations

import subprocess
import sys

import typer

from ehr_sandbox.cli.app import COMMANDS, MODULES, build_app, main


def _top_level(app: typer.Typer) -> set[str]:
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    return names | {g.name for g in app.registered_groups if g.name}


def test_every_command_is_routed_to_the_module_that_registers_it() -> None:
    every = _top_level(build_app())
    assert every == set(COMMANDS)
    for module in MODULES:
        for name in _top_level(build_app((module,))):
            assert COMMANDS[name] == module


def test_generate_runs_without_loading_the_ehr(tmp_path) -> None:
    code = (
        "import sys\n"
        "from ehr_sandbox.cli.app import main\n"
        f"rc = main(['generate', '-n', '1', '--years', '1', '--quiet', '--out', {str(tmp_path)!r}])\n"
        "heavy = sorted(m for m in ('ehr_sandbox.sandbox', 'ehr_sandbox.store', 'ehr_sandbox.views',"
        " 'ehr_sandbox.session', 'pyarrow', 'numpy', 'duckdb') if m in sys.modules)\n"
        "print(rc, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 []"
    assert (tmp_path / "Patient.ndjson").read_bytes().count(b"\n") == 1


def test_help_lists_every_command_and_a_typo_is_one_line(capsys) -> None:
    assert main(["--help"]) == 0
    shown = capsys.readouterr().out
    assert all(name in shown for name in COMMANDS)
    assert main(["generat", "-n", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1


def test_generate_user_error_is_one_line(capsys, tmp_path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["generate", "-n", "1", "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: out_dir") and "Traceback" not in err and "\n" not in err
