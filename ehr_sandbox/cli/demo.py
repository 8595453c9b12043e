"""``ehr-sandbox demo``: the main job on the embedded defaults, for a newcomer."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``ehr-sandbox`` application (or any Typer app).

    Examples
    --------
    >>> import typer
    >>> app = typer.Typer(); _ = app.command("noop")(lambda: None)
    >>> register(app)
    >>> sorted(typer.main.get_command(app).commands)
    ['demo', 'noop']
    """

    @app.command()
    def demo(
        patients: int = typer.Option(25, min=1, max=2000, help="How many patients to generate."),
        seed: int = typer.Option(7, help="Random seed (same seed, same clinic)."),
    ) -> None:
        """Generate a small practice and show what it holds."""
        from ehr_sandbox.cli.demo_run import run_demo

        run_demo(patients=patients, seed=seed)
