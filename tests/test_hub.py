"""The online Hub path through tests/hub_server.py: the real huggingface_hub client over HTTP
(HF_ENDPOINT), with redirects to a second host, Range reads, rate limits and injected failures."""

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import PLACEABLE_WNIDS, make_parquet_repo, read_manifest
from negmine.cli import cli

CLASSES = PLACEABLE_WNIDS


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def _repo(hub, tmp_path, repo_id="me/pool", **kw):
    opts = dict(shards=3, image_size=(64, 48))
    opts.update(kw)
    root = make_parquet_repo(tmp_path / repo_id.replace("/", "_"), CLASSES, 10, **opts)
    hub.add_repo(repo_id, root)
    return root


def _cdn_ranges(hub) -> dict[str, list[tuple[int, int]]]:
    """[start, end) of every range the storage host served, per file."""
    out = defaultdict(list)
    for e in hub.requests("cdn"):
        if e.status == 206:
            a, b = e.range.split("=")[1].split("-")
            out[e.path.split("?")[0].split("/data/")[-1]].append((int(a), int(b) + 1))
    return out


def _layout(root: Path) -> dict[str, dict]:
    """Per shard: the image column's [start, end) per row group, the label chunk spans, whether
    each group's label statistics say one value, and where the column data ends."""
    out = {}
    for f in sorted((root / "data").glob("*.parquet")):
        md = pq.ParquetFile(f).metadata
        groups = []
        for g in range(md.num_row_groups):
            rg = md.row_group(g)
            cols = {rg.column(k).path_in_schema: rg.column(k) for k in range(rg.num_columns)}
            def span(c):
                s = c.dictionary_page_offset if c.has_dictionary_page and c.dictionary_page_offset else c.data_page_offset
                return s, s + c.total_compressed_size
            img = [span(c) for p, c in cols.items() if p.startswith("image")]
            st = cols["label"].statistics
            groups.append({"image": (min(a for a, _ in img), max(b for _, b in img)), "label": span(cols["label"]),
                           "uniform": st.min == st.max})
        out[f.name] = {"groups": groups, "data_end": max(g["label"][1] for g in groups) if groups else 4,
                       "size": f.stat().st_size}
    return out


def _inside(r, spans) -> bool:
    return any(a <= r[0] and r[1] <= b for a, b in spans)


def _no_byte_twice(ranges: dict) -> None:
    for f, rs in ranges.items():
        rs = sorted(rs)
        assert all(b0 <= a1 for (_, b0), (a1, _) in zip(rs, rs[1:])), (f, rs)


@pytest.mark.parametrize("shuffled", [False, True])
def test_planning_reads_footers_and_only_the_label_chunks_statistics_do_not_answer(hub_server, positives, tmp_path,
                                                                                   shuffled):
    root = _repo(hub_server, tmp_path, layout="row-groups", shuffled=shuffled, row_group_rows=8)
    r = invoke("sample", "-q", "--json", "--dry-run", "-p", positives, "-s", "me/pool", "--count", 12, "--seed", 1,
               "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    layout, ranges = _layout(root), _cdn_ranges(hub_server)
    _no_byte_twice(ranges)
    read_labels = 0
    for name, info in layout.items():
        tail = (info["data_end"], info["size"])
        needed = [g["label"] for g in info["groups"] if not g["uniform"]]
        for rng in ranges[name]:                  # every byte fetched is footer/index, or a needed label chunk
            assert _inside(rng, [tail] + needed), (name, rng)
        for g in info["groups"]:                  # a group whose statistics give its label is never read
            if g["uniform"]:
                assert not any(a < g["label"][1] and g["label"][0] < b for a, b in ranges[name])
        read_labels += len(needed)
        assert not any(a < g["image"][1] and g["image"][0] < b for g in info["groups"] for a, b in ranges[name])
    assert (read_labels > 0) == shuffled or not shuffled and read_labels < len(CLASSES)
    # one resolver request per shard (its CDN location and size) plus the card, whatever the ranges
    assert plan["hub_planning"]["resolver_requests"] == len(layout) + 1
    assert plan["hub_planning"]["cdn_requests"] == sum(len(v) for v in ranges.values())
    assert plan["io"]["me/pool"]["download_bytes"] > 0


@pytest.mark.parametrize("layout", ["pages", "row-groups"])
def test_draw_fetches_whole_needed_units_once_and_the_dry_run_says_how_much(hub_server, positives, tmp_path, layout):
    root = _repo(hub_server, tmp_path, layout=layout, row_group_rows=8)
    # no near-duplicate check: a rejected candidate is replaced by one the dry run could not foresee
    args = ["-p", positives, "-s", "me/pool", "--count", 15, "--seed", 2, "--workers", 1, "-q", "--json", "--hash", "none"]
    dry = json.loads(invoke("sample", *args, "--dry-run", "-o", tmp_path / "dry").stdout)
    hub_server.clear_log()
    r = invoke("sample", *args, "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    ranges = _cdn_ranges(hub_server)
    _no_byte_twice(ranges)
    rows = [x for x in read_manifest(tmp_path / "ds") if x["role"] == "negative"]
    assert len(rows) == 15 and {x["revision"] for x in rows} == {hub_server.repos["me/pool"].shas["main"]}
    info = _layout(root)
    touched = 0
    for name, rs in ranges.items():
        groups = info[name]["groups"]
        for a, b in rs:
            if a >= info[name]["data_end"]:
                continue                          # footer and page index
            hit = [g["image"] for g in groups if a < g["image"][1] and g["image"][0] < b]
            touched += len(hit)
            if layout == "row-groups":            # whole image chunks, exactly (no read-ahead past them)
                assert hit and all(a <= s and e <= b for s, e in hit), (name, (a, b))
                assert a == hit[0][0] and b == hit[-1][1]
            else:                                 # pages inside one chunk
                assert len(hit) == 1 and hit[0][0] <= a and b <= hit[0][1], (name, (a, b))
    # units read: those of the 15 kept rows and of the candidates the draw's window looked at too
    assert touched <= 15 + 8 + 1
    # one resolver request per shard; the card came with the dry run (kept per commit, as every byte)
    assert summary["hub"]["resolver_requests"] == len(info) and summary["hub"]["retries"] == 0
    # the dry run says what the run after it downloads (footers and labels stay from the dry run)
    drawn = hub_server.bytes_sent("cdn")
    assert drawn > 0 and abs(drawn - dry["io"]["me/pool"]["download_bytes"]) <= 0.1 * drawn
    # the same run again, from scratch: every byte it needs is here already
    hub_server.clear_log()
    r = invoke("sample", *args, "-o", tmp_path / "again")
    assert r.exit_code == 0, r.output
    assert hub_server.bytes_sent("cdn") == 0
    assert read_manifest(tmp_path / "again") == read_manifest(tmp_path / "ds")


def test_repeat_plans_reuse_the_label_index_of_the_commit(hub_server, positives, tmp_path):
    _repo(hub_server, tmp_path, layout="row-groups", shuffled=True, row_group_rows=8, seed=5)   # a new commit
    args = ["sample", "-q", "--json", "--dry-run", "-p", positives, "-s", "me/pool", "--count", 12, "-o", tmp_path / "d"]
    first = json.loads(invoke(*args).stdout)["hub_planning"]
    second = json.loads(invoke(*args).stdout)["hub_planning"]
    assert second["cdn_requests"] == 0 < first["cdn_requests"]      # label index and footers kept per commit
    assert second["cdn_bytes"] == 0 < first["cdn_bytes"]


@pytest.mark.parametrize("source,setup,code,words", [
    ("nobody/absent", None, 4, "no dataset repo nobody/absent"),
    ("me/pool@v9", None, 4, "has no revision 'v9'"),
    ("me/gated", "gated", 6, "hf auth login"),
    ("me/private", "private", 4, "no dataset repo me/private"),
])
def test_hub_errors_are_one_line_with_their_exit_codes(hub_server, positives, tmp_path, monkeypatch, source,
                                                       setup, code, words):
    _repo(hub_server, tmp_path)
    if setup:
        _repo(hub_server, tmp_path, repo_id=source, **{})
        setattr(hub_server.repos[source], setup, True)
        monkeypatch.delenv("HF_TOKEN")
        monkeypatch.setenv("HF_HOME", str(tmp_path / "no-login"))
    r = invoke("sample", "-q", "-p", positives, "-s", source, "--count", 5, "-o", tmp_path / "ds")
    assert r.exit_code == code, r.output
    assert words in r.output and r.output.strip().count("\n") == 0 and "Traceback" not in r.output


def test_an_unreachable_hub_is_exit_5_in_one_line(hub_server, positives, tmp_path):
    hub_server.stop()                            # nothing listens there any more
    r = invoke("sample", "-q", "-p", positives, "-s", "me/pool", "--count", 5, "-o", tmp_path / "ds")
    assert r.exit_code == 5 and "cannot reach the Hub" in r.output and r.output.strip().count("\n") == 0


def test_storage_failures_are_retried_and_counted_then_reported(hub_server, positives, tmp_path):
    _repo(hub_server, tmp_path)
    hub_server.fail_next(3, 503, "cdn")
    r = invoke("sample", "-q", "--json", "-p", positives, "-s", "me/pool", "--count", 8, "--seed", 1,
               "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    hub = json.loads(r.stdout)["hub"]
    assert hub["retries"] == 3 and hub["server_errors"] == 3
    _repo(hub_server, tmp_path, repo_id="me/other", seed=9)     # a new commit: nothing of it is here yet
    hub_server.fail_next(1000, 502, "cdn")
    r = invoke("sample", "-q", "-p", positives, "-s", "me/other", "--count", 8, "--seed", 2, "-o", tmp_path / "ds2")
    assert r.exit_code == 5 and "HTTP 502" in r.output and r.output.strip().count("\n") == 0


def test_an_expired_storage_location_is_asked_again(hub_server, positives, tmp_path):
    _repo(hub_server, tmp_path, shards=1)
    hub_server.url_ttl = -1                     # every CDN location is already expired
    r = invoke("sample", "-q", "-p", positives, "-s", "me/pool", "--count", 4, "-o", tmp_path / "ds")
    assert r.exit_code == 5, r.output           # asked again once, still expired: a clear error, no loop
    hub_server.url_ttl = 3600
    r = invoke("sample", "-q", "-p", positives, "-s", "me/pool", "--count", 4, "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.output


def test_rate_limits_pace_the_run_and_429s_are_waited_out(hub_server, positives, tmp_path):
    _repo(hub_server, tmp_path, shards=3)
    # our own pacing: 2 resolver requests per second, the server never has to say no
    r = invoke("sample", "-q", "--json", "--hub-rate", "2/1", "-p", positives, "-s", "me/pool", "--count", 6,
               "--seed", 1, "-o", tmp_path / "a")
    assert r.exit_code == 0, r.output
    hub = json.loads(r.stdout)["hub"]
    # the card and one HEAD per shard read: more than the limit allows in one second, never 3 within
    # one (without pacing they go out within milliseconds; a machine too slow for that needs none)
    assert hub["resolver_requests"] >= 3 and hub["rate_limited"] == 0
    times = [e.t for e in hub_server.requests("resolve")]
    assert all(later - first >= 0.95 for first, later in zip(times, times[2:]))   # never 3 within a second
    # a server stricter than we knew: 429 + Retry-After, waited out, counted (the next two resolver
    # requests are refused, whatever the machine's speed)
    hub_server.fail_next(2, 429, "resolve")
    _repo(hub_server, tmp_path, repo_id="me/other", shards=3, seed=7)   # nothing of it fetched yet
    r = invoke("sample", "-q", "--json", "-p", positives, "-s", "me/other", "--count", 6, "--seed", 1,
               "-o", tmp_path / "b")
    assert r.exit_code == 0, r.output
    hub = json.loads(r.stdout)["hub"]
    assert hub["rate_limited"] == 2
    assert [e.status for e in hub_server.requests("resolve")].count(429) == hub["rate_limited"]


def test_max_download_clusters_the_draw_to_fit_or_says_what_it_needs(hub_server, positives, tmp_path):
    _repo(hub_server, tmp_path, layout="row-groups", row_group_rows=10, shards=2)
    base = ["sample", "-q", "--json", "--dry-run", "-p", positives, "-s", "me/pool", "--count", 24, "--seed", 3]
    free = json.loads(invoke(*base, "-o", tmp_path / "a").stdout)["io"]["me/pool"]
    cap = free["download_bytes"] * 2 // 3
    r = invoke(*base, "--max-download", cap, "-o", tmp_path / "b")
    assert r.exit_code == 0, r.output
    fitted = json.loads(r.stdout)
    assert fitted["io"]["me/pool"]["download_bytes"] <= cap
    assert sum(fitted["draw"]["me/pool"].values()) == 24
    r = invoke(*base, "--max-download", "1KB", "-o", tmp_path / "c")
    assert r.exit_code == 1 and "over --max-download 1 KB" in r.stderr
    assert json.loads(r.stdout)["exit_code"] == 1
    hub_server.clear_log()
    r = invoke("sample", "-q", "--json", "-p", positives, "-s", "me/pool", "--count", 24, "--seed", 3,
               "--max-download", cap, "-o", tmp_path / "d")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["hub"]["cdn_bytes"] <= cap     # footers and labels came with the dry runs


def test_converted_parquet_branch_and_partial_splits_are_said(hub_server, positives, tmp_path):
    conv = tmp_path / "conv"
    full = make_parquet_repo(tmp_path / "full", CLASSES[:6], 4)
    part = make_parquet_repo(tmp_path / "part", CLASSES[6:12], 4, split="validation")
    for src, folder in ((full, "default/train"), (part, "default/partial-validation")):
        (conv / folder).mkdir(parents=True)
        next((src / "data").glob("*.parquet")).rename(conv / folder / "0000.parquet")
    main = tmp_path / "main"
    main.mkdir()
    (main / "README.md").write_text("---\nlicense: mit\n---\n")
    (main / "loader.py").write_text("# a loading script: datasets >= 4 cannot run it\n")
    hub_server.add_repo("me/scripted", refs={"main": main, "refs/convert/parquet": conv})
    r = invoke("sample", "-q", "--json", "-p", positives, "-s", "me/scripted@refs/convert/parquet", "--count", 6,
               "-o", tmp_path / "a")
    assert r.exit_code == 0, r.output
    rows = [x for x in read_manifest(tmp_path / "a") if x["role"] == "negative"]
    assert {x["file"] for x in rows} == {"default/train/0000.parquet"}
    assert {x["licence"] for x in rows} == {"MIT"}            # from the repo's card: the branch has none
    r = invoke("sample", "--json", "--dry-run", "-p", positives, "-s", "me/scripted@refs/convert/parquet?split=validation",
               "--count", 6, "-o", tmp_path / "b")
    plan = json.loads(r.stdout)
    assert plan["sources"][0]["partial"] is True and "not all of it" in plan["notes"][0]


def test_the_command_line_reads_hf_endpoint_and_quiet_silences_hub_retries(hub_server, positives, tmp_path):
    """As a user runs it: a new process, HF_ENDPOINT in the environment, a flaky Hub API."""
    _repo(hub_server, tmp_path, shards=2)
    hub_server.fail_next(2, 503, "api")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "NEGMINE_CACHE": str(tmp_path / "nc")}
    cmd = [sys.executable, "-m", "negmine", "sample", "-p", str(positives), "-s", "me/pool", "--count", "6",
           "--seed", "1", "-o", str(tmp_path / "ds")]
    r = subprocess.run(cmd + ["--quiet"], env=env, capture_output=True, text=True, timeout=600)   # a hang guard
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert [e.status for e in hub_server.requests("api")].count(503) == 2
    assert "Hub: downloaded" in r.stdout
    assert {x["source"] for x in read_manifest(tmp_path / "ds") if x["role"] == "negative"} == {"me/pool"}


def test_the_rate_limit_sets_the_least_time_a_plan_takes(positives, tmp_path):
    from negmine.errors import NegmineError
    from negmine.sources import budget

    budget.configure("10/60")
    # 10 resolver requests fit in one window; the 11th waits a window, the 21st a second one
    assert [budget.min_seconds(n) for n in (0, 10, 11, 20, 21)] == [0, 0, 60, 60, 120]
    for bad in ("fast", "0/60", "10/", "2/0"):
        with pytest.raises(NegmineError, match="--hub-rate"):
            budget.configure(bad)
    r = invoke("sample", "-q", "-p", positives, "-s", "me/x", "--hub-rate", "lots", "-o", tmp_path / "o")
    assert r.exit_code == 1 and "--hub-rate must be" in r.output
    budget.configure(None)


def test_a_rate_limited_storage_host_is_waited_out(hub_server, positives, tmp_path):
    _repo(hub_server, tmp_path, shards=1)
    hub_server.limits["cdn"] = (2, 1.0)          # the storage host allows 2 requests a second
    r = invoke("sample", "-q", "--json", "-p", positives, "-s", "me/pool", "--count", 5, "--seed", 1,
               "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    answered = [e.status for e in hub_server.requests("cdn")]
    assert answered.count(429) >= 1 and json.loads(r.stdout)["hub"]["rate_limited"] == answered.count(429)
    assert len(read_manifest(tmp_path / "ds")) > 5


def test_json_runs_say_why_they_failed_on_stdout_and_sources_are_given_once(hub_server, positives, tmp_path):
    r = invoke("sample", "--json", "-q", "-p", positives, "-s", "nobody/absent", "-o", tmp_path / "a")
    assert r.exit_code == 4 and json.loads(r.stdout) == {"error": r.stderr.strip().removeprefix("Error: "),
                                                         "exit_code": 4}
    _repo(hub_server, tmp_path)
    r = invoke("sample", "-q", "-p", positives, "-s", "me/pool", "-s", "me/pool", "-o", tmp_path / "b")
    assert r.exit_code == 1 and "given twice" in r.output
