"""Recipes: a TOML file of `negmine sample` options, run with `negmine run RECIPE [OPTIONS]`.

Keys are the options' names (`hash-distance` or `hash_distance`); lists for repeatable options;
`requires`, a list of the extras the recipe needs (`["cv"]`), checked before anything runs.
Options given on the command line override the recipe. A recipe's paths are relative to the
recipe's own folder (a recipe travels with its data): `positives`, `out`, `boxes` and `masks`
always (an fsspec URL such as s3://... is kept as it is), `source` and `content-model` when
written as a path (`./pool`, `../pool`, `/data/pool`, `~/pool`), since a bare name there is a
preset or a Hub repo. Paths given on the command line are relative to where you run it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from negmine.errors import NegmineError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# the option values (click parameter names) that are always paths, and those that are paths only
# when written as one (else a preset, a Hub repo or a Hub checkpoint id)
PATH_OPTIONS = ("positives", "out", "boxes", "masks")
SPEC_OPTIONS = ("sources", "content_model")
# extra -> (modules it installs, what needs it), as pyproject.toml's optional-dependencies say
EXTRAS = {"cv": (("cv2",), "OpenCV, for --cutout-fill inpaint and --cutout-region mask"),
          "clip": (("torch", "transformers"), "torch and transformers, for --content-check clip"),
          "ray": (("ray",), "Ray, for --engine ray")}


def load_recipe(path: Path, params: dict[str, object]) -> dict:
    """Recipe -> click default_map for `sample` (relative paths resolved against the recipe's
    folder; `requires` left out: see `recipe_requires`). `params`: option name -> click.Parameter.
    Raises NegmineError for an unreadable file, bad TOML, an unknown key or a value of the wrong kind."""
    data = _read(path)
    base = Path(path).expanduser().resolve().parent
    by_flag = {o.lstrip("-").replace("-", "_"): p for p in params.values() for o in getattr(p, "opts", [])
               if o.startswith("--")}
    out = {}
    for key, value in data.items():
        if key == "requires":
            _requires(path, value)
            continue
        param = by_flag.get(key.replace("-", "_"))
        if param is None or param.name in ("debug",):
            known = ", ".join(sorted(k.replace("_", "-") for k, p in by_flag.items() if p.name != "debug"))
            raise NegmineError(f"recipe {path}: unknown option {key!r}; options: {known}, requires")
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
        if name in PATH_OPTIONS + SPEC_OPTIONS:
            value = [_located(v, base, name) for v in value] if multiple else _located(value, base, name)
        out[name] = value
    return out


def recipe_requires(path: Path) -> list[str]:
    """The extras a recipe names in `requires` (each one of `EXTRAS`). Raises NegmineError as
    `load_recipe` does."""
    return _requires(path, _read(path).get("requires", []))


def needed_extras(values: dict) -> list[str]:
    """The extras the `sample` options `values` (click parameter names, as `load_recipe` returns
    them) need: cv for an inpaint fill or a mask region, clip for --content-check, ray for --engine ray."""
    need = []
    fills = values.get("cutout_fills") or []
    if "inpaint" in fills or values.get("cutout_region") == "mask":
        need.append("cv")
    if values.get("content_check"):
        need.append("clip")
    if values.get("engine") == "ray":
        need.append("ray")
    return need


def check_extras(path: Path, extras: list[str]) -> None:
    """Raise NegmineError, in one line, naming the first of `extras` that is not installed."""
    for extra in extras:
        modules, what = EXTRAS[extra]
        if not all(_installed(m) for m in modules):
            raise NegmineError(f"recipe {path} needs the extra {extra} ({what}), which is not installed: "
                               f"pip install 'negmine[{extra}]'")


def _installed(module: str) -> bool:
    if module in sys.modules:             # imported already, or blocked (None)
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise NegmineError(f"cannot read recipe {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise NegmineError(f"recipe {path} is not valid TOML: {exc}") from None


def _requires(path: Path, value: object) -> list[str]:
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) and v in EXTRAS for v in value):
        raise NegmineError(f"recipe {path}: requires takes a list of extras, each one of {', '.join(EXTRAS)}")
    return list(value)


def _located(value: object, base: Path, name: str) -> object:
    """A recipe's path `value` resolved against the recipe's folder `base` (see the module docstring)."""
    if not isinstance(value, str) or "://" in value:
        return value
    text, sep, query = value.partition("?") if name == "sources" else (value, "", "")
    if name in SPEC_OPTIONS and not text.startswith(("./", "../", "/", "~", ".\\", "..\\")) and text not in (".", ".."):
        return value                      # a preset, a Hub repo or checkpoint id
    p = Path(text).expanduser()
    return str(p if p.is_absolute() else base / p) + sep + query
