"""Recipes: a TOML file of `negmine sample` options, run with `negmine run RECIPE [OPTIONS]`.

Keys are the options' names (`hash-distance` or `hash_distance`); lists for repeatable options.
Options given on the command line override the recipe. Paths are relative to where you run it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from negmine.errors import NegmineError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def load_recipe(path: Path, params: dict[str, object]) -> dict:
    """Recipe -> click default_map for `sample`. `params`: option name -> click.Parameter."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise NegmineError(f"cannot read recipe {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise NegmineError(f"recipe {path} is not valid TOML: {exc}") from None
    out = {}
    for key, value in data.items():
        by_flag = {o.lstrip("-").replace("-", "_"): p for p in params.values() for o in getattr(p, "opts", [])
                   if o.startswith("--")}
        param = by_flag.get(key.replace("-", "_"))
        if param is None or param.name in ("debug",):
            known = ", ".join(sorted(k.replace("_", "-") for k, p in by_flag.items() if p.name != "debug"))
            raise NegmineError(f"recipe {path}: unknown option {key!r}; options: {known}")
        name = param.name
        multiple = getattr(param, "multiple", False)
        if multiple:
            value = [value] if isinstance(value, (str, int, float)) else value
            if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
                raise NegmineError(f"recipe {path}: {key} takes a list of values")
        elif getattr(param, "is_flag", False):
            if not isinstance(value, bool):
                raise NegmineError(f"recipe {path}: {key} takes true or false")
        elif isinstance(value, (list, dict)):
            raise NegmineError(f"recipe {path}: {key} takes one value, not a {type(value).__name__}")
        out[name] = value
    return out
