"""Dataset cards (a Hub repo's README.md): the YAML header's data, licence and features."""

from __future__ import annotations

import re

# the YAML header of a dataset card, as huggingface_hub.repocard finds it
_CARD_YAML = re.compile(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")


def card_data(card_text: str | None) -> dict:
    """The card's YAML metadata (licence, dataset_info), parsed with PyYAML directly:
    huggingface_hub's DatasetCard pulls in its whole Hub API (a tenth of a second of start-up)."""
    m = _CARD_YAML.match(card_text or "")
    if not m:
        return {}
    try:
        import yaml

        data = yaml.safe_load(m.group(2))
    except Exception:
        return {}
    return data if isinstance(data, dict) else {}


def card_licence(card_text: str | None) -> str | None:
    lic = card_data(card_text).get("license")
    if isinstance(lic, list):
        lic = ", ".join(map(str, lic))
    return str(lic) if lic else None


def card_features(card_text: str | None, config: str | None = None):
    """The card's declared `datasets.Features`, or None. With `config` (a name from the card's
    `configs`), that config's alone, as `datasets.load_dataset_builder` takes them: its `configs`
    entry's `features`, else the `dataset_info` of that config name; never another config's."""
    data = card_data(card_text)
    if config is not None:
        entry = next((c for c in data.get("configs") or [] if isinstance(c, dict)
                      and c.get("config_name", "default") == config), None)
        if entry and entry.get("features"):
            try:
                from datasets import Features

                return Features._from_yaml_list(entry["features"])
            except Exception:
                return None
    if not data.get("dataset_info"):            # nothing to read: spare the `datasets` import
        return None
    try:
        from datasets.info import DatasetInfosDict

        infos = DatasetInfosDict.from_dataset_card_data(data)
        if config is not None:
            info = infos.get(config)
            return info.features if info else None
        for info in infos.values():
            if info.features:
                return info.features
    except Exception:
        return None
    return None
