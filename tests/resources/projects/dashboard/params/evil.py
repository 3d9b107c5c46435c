"""Hostile text where a researcher's text goes: the dashboard must show it, not run it."""

from experiments.sweep import Params


def get_params():
    return [
        Params(name="<script>window.__pwned=1</script>", lr=0.3),
        Params(name='"><img src=x onerror="window.__pwned=2">', lr=0.05, model="<b>bold</b>"),
    ]
