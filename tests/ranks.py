"""Run a test script in N processes (torchrun, gloo) and collect one JSON result per rank.

Each rank writes its result to a file of its own: two ranks printing long lines to the
pipe torchrun shares would interleave them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPORT = """
def report(row):
    import json, os
    from pathlib import Path
    Path(os.environ["RANK_RESULTS"], os.environ.get("RANK", "0") + ".json").write_text(json.dumps(row))
"""


def run_ranks(script: str, tmp_path: Path, *args: str, nproc: int = 2, name: str = "ranks") -> list[dict]:
    """Run `script` (which calls `report(dict)` once) under torchrun with `nproc` processes,
    or as one plain process when nproc is 0; return the reports in rank order."""
    path, out = tmp_path / f"{name}.py", tmp_path / name
    path.write_text(REPORT + script)
    out.mkdir()
    launch = (
        [sys.executable]
        if nproc == 0
        else [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    )  # --standalone: a free local port
    done = subprocess.run(
        [*launch, str(path), *args],
        env={**os.environ, "OMP_NUM_THREADS": "1", "RANK_RESULTS": str(out)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((out / f"{rank}.json").read_text()) for rank in range(max(1, nproc))]
