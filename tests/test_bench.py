"""Every benchmark script runs, on tiny inputs, and returns sane numbers (timings are never asserted)."""

import importlib

import pytest

NAMES = ["hashing", "search", "sampling_io", "memory", "end_to_end", "cutout", "hub_io", "contamination", "ray",
         "remote_out", "senses", "shortcut", "text_exclusion", "licence_pool", "fills", "composites", "grabcut"]


@pytest.mark.parametrize("name", NAMES)
def test_bench_runs_tiny(name, tmp_path, monkeypatch):
    import bench.common

    module = importlib.import_module(f"bench.{name}")
    for mod in (bench.common, module, importlib.import_module("bench.memory")):
        if hasattr(mod, "CACHE"):
            monkeypatch.setattr(mod, "CACHE", tmp_path)
    result = module.run("tiny")
    assert result["name"] == name and isinstance(result["targets"], dict)
    if name == "hashing":
        assert result["agreement_bits"]["mean"] < 2 and all(v > 0 for v in result["ms_per_image"].values())
    if name == "search":
        assert result["targets"]["exact"] and result["b_vs_a"]["exact"]
    if name == "sampling_io":
        assert result["negmine_pages"]["classes_covered"] == result["classes"]    # stratified over the pool
        for run in ("negmine_pages", "negmine_max_read_5", "row_groups"):
            assert result[run]["bytes_read"] >= result[run]["bytes_kept"] > 0
        # the same draw: pages read no more than row groups; clustering reads less
        assert result["negmine_pages"]["bytes_read"] <= result["row_groups"]["bytes_read"]
        assert result["negmine_max_read_5"]["bytes_read"] < result["negmine_pages"]["bytes_read"] / 3
    if name == "memory":
        assert all(v > 50 for v in result["peak_rss_mb"].values())
    if name == "end_to_end":
        assert result["disk"]["negmine_kept"] == result["disk"]["script_kept"] == result["negatives"]
    if name == "hub_io":
        for run in result["runs"].values():      # every run kept its negatives and was measured against its floor
            assert run["negmine"]["kept"] > 0 and run["floor"]["bytes"] > 0
            assert run["negmine"]["classes_covered"] >= run["datasets_streaming"]["classes_covered"]
    if name == "ray":
        assert result["identical_manifests"] and set(result["seconds"]) >= {"local_1", "ray_1"}
    if name == "remote_out":                      # every file of the local run went up, each with one PUT
        assert result["same_files"] and result["requests"]["PUT file"] == result["files"] > 0
    if name == "cutout":
        assert set(result["images_per_s"]) >= {"noise", "blur", "mean", "black", "tile", "inpaint"}
    if name == "contamination":
        for concept in result["concepts"].values():
            t = concept["by_threshold"]
            assert t["1"]["classes_excluded"] == 0 and t["1"]["removed_share"] == 0      # 1 turns it off
            # a lower threshold excludes at least the same classes, so removes at least as much
            assert t["0"]["classes_excluded"] >= t["0.05"]["classes_excluded"] >= t["0.2"]["classes_excluded"]
            assert t["0"]["removed_share"] >= t["0.05"]["removed_share"] >= t["0.2"]["removed_share"]
        assert result["concepts"]["dog"]["positive_classes"] == 118
    if name == "senses":                          # a dog is not a person; COCO's cell phone is ImageNet's cellphone
        dog = result["names"]["dog"]
        assert "person" in dog["coco_all_senses"]["too_much"] and dog["coco_negmine"]["too_much"] == []
        assert dog["imagenet_negmine"]["agree"] == dog["imagenet_negmine"]["expected"] == 118
        assert result["names"]["cell phone"]["imagenet_negmine"]["agree"] == 1
        assert result["totals"]["coco_negmine"]["too_much"] < result["totals"]["coco_all_senses"]["too_much"]
    if name == "shortcut":                        # real-only and each fill's row, every measure a rate
        assert [(r["fills"], r["synthetic"]) for r in result["rows"]] == [("real", 0.0), ("noise", 1.0), ("tile", 1.0)]
        assert all(0 <= r[k]["min"] <= r[k]["mean"] <= r[k]["max"] <= 1 for r in result["rows"]
                   for k in ("fpr_real", "fpr_real_tpr90", "auc_split", "auc_real"))
        assert result["cutouts_per_fill"]["noise"] > 0 and result["held_out_real"] == 30
    if name == "licence_pool":                    # no NC row kept, every kept row credited, clustering reads less
        runs = result["runs"]
        assert all(r["kept"] == result["count"] and "CC-BY-NC-2.0" in r["left_out"] for r in runs.values())
        assert result["targets"]["no_nc_row_kept"] and result["targets"]["every_kept_row_credited"]
        assert runs["default"]["bytes"] < runs["plain-repo"]["bytes"]     # the preset pays for each page it reads
        assert runs["default"]["fetched_by_column"]["licensename"] > 0
    if name == "text_exclusion":                  # the first 24 captioned photos are all dogs
        dog = result["per_positive"]["dog"]["negmine"]
        assert dog["shows"] == 24 and dog["caught"] + len(dog["missed"]) == 24 and dog["caught"] >= 22
        read = result["planning_read"]                # planning read the captions, not the images
        assert 0 < read["text_chunk_bytes"] < read["image_column_bytes"] / 100
    if name == "fills":                           # matched noise is closer to the ring than white noise
        hole = result["hole_vs_ring"]
        assert hole["noise (matched)"]["hf_ratio"] < hole["noise (uniform, before)"]["hf_ratio"]
    if name == "composites":
        assert all(r["written"] > 0 for r in result["methods"].values())
    if name == "grabcut":
        assert result["boxes"] > 0 and set(result["seconds_per_box"]) == {"old", "new"}
