"""Which column of a table source holds the image, and which the label: read from the
`datasets` features (schema metadata or the dataset card), refused in one line when ambiguous."""

from __future__ import annotations

import json
from collections.abc import Sequence

from negmine.errors import NegmineError, SourceNotFound
from negmine.sources.labels import LIST_LABEL_FIELDS

_LABEL_NAMES = ("label", "labels", "class", "fine_label", "coarse_label", "category", "wnid", "synset", "objects", "tags")
_IMAGE_NAMES = ("image", "img", "jpg", "jpeg", "png", "picture")


def feature_kinds(features) -> dict[str, tuple[str, list[str] | None]]:
    """{column: (feature type, class names of a ClassLabel)} from `datasets.Features` or from the
    JSON `datasets` stores in a parquet schema ({"_type": "Image"}, {"_type": "ClassLabel", ...}).
    A ClassLabel with `num_classes` but no names is ("ClassIds", ["0", "1", ...]): its codes are
    no class names (see `has_class_ids`)."""
    out = {}
    if type(features) is not dict and hasattr(features, "to_dict"):     # datasets.Features (a dict subclass)
        features = features.to_dict()          # datasets.Features: the same JSON the parquet schema holds
    for name, f in (features or {}).items():
        listed = _list_label_names(f)
        if listed is not None:
            out[name] = ("LabelList", listed or None)
            continue
        if isinstance(f, dict):
            kind = f.get("_type")
            names = f.get("names")
            if kind == "ClassLabel" and names is None and isinstance(f.get("num_classes"), int):
                # codes with no names: kept apart ("ClassIds") so they are never read as names
                out[name] = ("ClassIds", [str(i) for i in range(f["num_classes"])])
                continue
        else:
            kind, names = type(f).__name__, getattr(f, "names", None)
        if kind == "ClassLabel" and not isinstance(names, list):
            raise ValueError(f"ClassLabel {name!r} without names")
        out[name] = (kind, list(names) if kind == "ClassLabel" else None)
    return out


def _list_label_names(f) -> list[str] | None:
    """For a feature (JSON form) that is a list of labels: the class names of its ClassLabel ([]
    when the labels are plain values); None when it is not a label list. Shapes: List(ClassLabel),
    List(Value), List({label|category: ...}), {category: List(ClassLabel)} (a Sequence of objects)."""
    if not isinstance(f, dict):
        return None

    def names_of(x) -> list[str] | None:
        if not isinstance(x, dict):
            return None
        if x.get("_type") == "ClassLabel":
            names = x.get("names")
            if names is None and isinstance(x.get("num_classes"), int):
                names = [str(i) for i in range(x["num_classes"])]
            return list(names) if isinstance(names, list) else None
        return [] if x.get("_type") == "Value" else None

    kind = f.get("_type")
    if kind in ("List", "Sequence", "LargeList"):
        inner = f.get("feature")
        got = names_of(inner)
        if got is not None:
            return got
        if isinstance(inner, dict) and "_type" not in inner:        # a record per label
            field = next((k for k in LIST_LABEL_FIELDS if k in inner), None)
            return names_of(inner[field]) if field else None
        return None
    if kind is None:                                                  # a struct of lists
        field = next((k for k in LIST_LABEL_FIELDS if isinstance(f.get(k), dict)
                      and f[k].get("_type") in ("List", "Sequence", "LargeList")), None)
        return names_of(f[field].get("feature")) if field else None
    return None


def schema_kinds(schema) -> dict | None:
    """Feature kinds from the `huggingface` metadata of a parquet schema, without importing
    `datasets` (a second of start-up); None when absent or not understood."""
    if not schema.metadata or b"huggingface" not in schema.metadata:
        return None
    try:
        features = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
        return feature_kinds(features) if isinstance(features, dict) else None
    except (ValueError, KeyError, TypeError):
        return None


def pick_columns(kinds: dict | None, names: list[str], image_column: str | None, label_column: str | None,
                  where: str, image_like: set[str]) -> tuple[str, str | None, list[str] | None]:
    """(image column, label column or None, its ClassLabel names or None) of a table source.

    Detection goes by feature type first (`Image`; `ClassLabel`, then a list of labels), then by
    structure (`image_like`: struct columns holding image bytes), then by conventional names, and
    takes a column only when it is the one candidate of the first kind that has any: never the
    first of several by position (a segmentation pool's `mask` and `image`, CIFAR-100's
    `fine_label` and `coarse_label`). An image column (an `Image` feature, or image bytes) is never
    a label column, whatever its name (segments.ai pools name the mask `label`).
    `kinds`: see `feature_kinds`. Raises SourceNotFound for a named column that is not there, and
    NegmineError (one line naming the candidates and the option that chooses) for no image column,
    several, several label columns, or an image column named as the label."""
    kinds = kinds or {}
    images = [n for n in names if kinds.get(n, ("",))[0] == "Image" or n in image_like]

    def check(col: str, what: str) -> str:
        if col not in names:
            raise SourceNotFound(f"{where} has no {what} column {col!r}; columns: {', '.join(names)}")
        return col

    def not_labels() -> str:
        wrong = image_columns_named_as_labels(kinds, names, image_like)
        return (f"; {', '.join(repr(n) for n in wrong)} {'holds' if len(wrong) == 1 else 'hold'} images "
                "(a segmentation map?), not class labels") if wrong else ""

    if image_column:
        image = check(image_column, "image")
    else:
        typed = [n for n in names if kinds.get(n, ("",))[0] == "Image"]
        guess = (typed or [n for n in names if n in image_like]
                 or [n for n in names if n.lower() in _IMAGE_NAMES])
        if not guess:
            raise SourceNotFound(f"{where} has no image column (columns: {', '.join(names)}); "
                                 "name one with --image-column")
        image = one_of(guess, "image", "--image-column", "image", where, not_labels())
    if label_column and label_column.lower() == "none":
        return image, None, None
    if label_column:
        label = check(label_column, "label")
        if label in images:
            raise NegmineError(f"{where}: column {label!r} holds images, not class labels; name the label "
                               "column with --label-column (or ?label=), or --label-column none for no labels")
    else:
        typed = ([n for n in names if kinds.get(n, ("",))[0] in ("ClassLabel", "ClassIds")]
                 or [n for n in names if kinds.get(n, ("",))[0] == "LabelList"])
        guess = typed or [n for n in names if n.lower() in _LABEL_NAMES and n != image and n not in images]
        label = one_of(guess, "label", "--label-column", "label", where) if guess else None
    class_names = kinds[label][1] if label in kinds else None
    return image, label, class_names


def has_class_ids(kinds: dict | None, label: str | None, label_type, class_names: list[str] | None) -> bool:
    """Whether a label column holds bare class ids: integers (or lists of them) with no class
    names in the features or card (a ClassLabel with only `num_classes`, or whose names are its codes
    "0".."n-1" as `datasets` writes ClassLabel(num_classes=n); or a plain int column).
    Such a class is a number, not a name: "7" would be placed in WordNet as the digit seven, so
    the class plan never looks them up (`negmine.filters.overlap.plan_classes`). `label_type`:
    the column's arrow type."""
    import pyarrow as pa

    if label is None or label_type is None:
        return False
    if (kinds or {}).get(label, ("",))[0] == "ClassIds":
        return True
    t = label_type
    while pa.types.is_list(t) or pa.types.is_large_list(t):
        t = t.value_type
    # `datasets` writes ClassLabel(num_classes=n) as the names "0".."n-1": no more a name than the code
    return pa.types.is_integer(t) and (not class_names or class_names == [str(i) for i in range(len(class_names))])


def image_columns_named_as_labels(kinds: dict | None, names: list[str], image_like: set[str]) -> list[str]:
    """Image columns (an `Image` feature, or image bytes) with a label column's name: segments.ai's
    `label` map. They are never read as labels; the plan lists them so an unlabelled pool says why."""
    kinds = kinds or {}
    return [n for n in names if (kinds.get(n, ("",))[0] == "Image" or n in image_like) and n.lower() in _LABEL_NAMES]


def one_of(candidates: Sequence[str], what: str, option: str, query: str, where: str, more: str = "") -> str:
    """The one candidate column (or key) for `what`; NegmineError naming them all and the option
    (and the per-source query `?query=`) that chooses when there are several. Position in a schema
    says nothing about which is meant, so several are never resolved by order."""
    if len(candidates) == 1:
        return candidates[0]
    listed = ", ".join(repr(c) for c in candidates)
    raise NegmineError(f"{where} has {len(candidates)} {what} columns ({listed}){more}; say which with "
                       f"{option} NAME (or ?{query}=NAME on the source)")


def is_image_struct(t) -> bool:
    import pyarrow as pa

    return pa.types.is_struct(t) and t.get_field_index("bytes") >= 0
