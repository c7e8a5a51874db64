"""`negmine run`: a recipe file as `sample` options."""

from __future__ import annotations

from pathlib import Path

import click

from negmine.cli.common import handle_errors
from negmine.cli.sample import sample


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                              "help_option_names": ["-h", "--help"]})
@click.argument("recipe", type=click.Path(path_type=Path))
@click.pass_context
@handle_errors
def run(ctx, recipe) -> None:
    """Run a recipe: a TOML file of `sample` options. Options given after it override the recipe.

    \b
    negmine run recipes/bears-other.toml --positives ./my-bears --seed 3
    """
    from negmine.recipes import load_recipe

    values = load_recipe(recipe, {p.name: p for p in sample.params})
    with sample.make_context("negmine run", list(ctx.args), parent=ctx, default_map=values) as sub:
        # --ratio / --balanced / --count are one choice: one given here replaces the recipe's
        amount = ("ratio", "balanced", "count")
        given = [n for n in amount if sub.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
        if given:
            for n in amount:
                if n not in given and sub.get_parameter_source(n) == click.core.ParameterSource.DEFAULT_MAP:
                    sub.params[n] = False if n == "balanced" else None
        sample.invoke(sub)
