"""`python -m astrobio.cli ...` (what `torchrun ... -m astrobio.cli train ...` runs on every rank)."""

from astrobio.cli.main import app

if __name__ == "__main__":
    app(prog_name="astrobio")
