"""``python -m poisonlab``: the same command line as the ``poisonlab`` script."""

from .cli.main import app

app(prog_name="poisonlab")
