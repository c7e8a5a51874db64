"""The light part of scripts/check_trainers.py, in CI: every format `datasets` loads, read back by
`datasets` with the class names, counts and labels negmine wrote."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_trainers.py"


def test_datasets_reads_each_format_as_written(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "--only", "datasets", "--workdir", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [line for line in r.stdout.splitlines() if line.split()[:1] in (["PASS"], ["FAIL"], ["SKIP"])]
    assert [line.split()[:3] for line in lines] == [["PASS", "imagefolder", "datasets"], ["PASS", "hf", "datasets"]]
    hf = next(line for line in lines if " hf " in line)
    assert "ids shift" not in hf                                   # hf: one ClassLabel, even with a class missing
