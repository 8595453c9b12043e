"""``python -m ehr_sandbox`` runs the command line."""

from ehr_sandbox.cli.app import run

if __name__ == "__main__":
    run()
