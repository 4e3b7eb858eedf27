"""`python -m astrobio.cli ...` (what `torchrun ... -m astrobio.cli train ...` runs on every rank)."""

from astrobio.cli.main import app

app(prog_name="astrobio")
