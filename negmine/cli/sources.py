"""`negmine sources`: the presets."""

from __future__ import annotations

import json

import click

USE = {True: "yes", False: "no", None: "cannot say (treated as no by --licence commercial)"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sources(as_json: bool) -> None:
    """List the named pools (presets) usable with --source NAME."""
    from dataclasses import asdict

    from negmine.licences import parse_licence
    from negmine.sources.presets import DEFAULT_PRESET, PRESETS

    if as_json:
        click.echo(json.dumps([{**asdict(p), "default": p.name == DEFAULT_PRESET, "licence_id": parse_licence(p.licence).id,
                                "commercial": parse_licence(p.licence).commercial} for p in PRESETS.values()], indent=2))
        return
    for p in PRESETS.values():
        star = " (default)" if p.name == DEFAULT_PRESET else ""
        click.echo(f"{p.name}{star}\n  repo: {p.repo}  split: {p.split}\n  {p.rows:,} rows, {p.classes} classes, "
                   f"labels: {p.label_kind}, images: {p.image_size}\n  licence: {p.licence}; commercial use: "
                   f"{USE[parse_licence(p.licence).commercial]}\n  {p.note}")
