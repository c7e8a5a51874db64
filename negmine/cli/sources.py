"""`negmine sources`: the presets."""

from __future__ import annotations

import json

import click



@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sources(as_json: bool) -> None:
    """List the named pools (presets) usable with --source NAME."""
    from dataclasses import asdict

    from negmine.sources.presets import DEFAULT_PRESET, PRESETS

    if as_json:
        click.echo(json.dumps([{**asdict(p), "default": p.name == DEFAULT_PRESET} for p in PRESETS.values()], indent=2))
        return
    for p in PRESETS.values():
        star = " (default)" if p.name == DEFAULT_PRESET else ""
        click.echo(f"{p.name}{star}\n  repo: {p.repo}  split: {p.split}\n  {p.rows:,} rows, {p.classes} classes, "
                   f"labels: {p.label_kind}, images: {p.image_size}\n  licence: {p.licence}\n  {p.note}")
