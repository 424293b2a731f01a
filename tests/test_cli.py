"""The CLI as a user runs it: exit codes, stdout vs stderr; in-process by default, in a real
process where the process is the point (start-up cost, signals, pipes, torchrun)."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).parents[1]


def tempclr(
    *args: str, stdin: str | None = None, cwd: Path | None = None, env_extra: dict | None = None, process: bool = False
) -> subprocess.CompletedProcess:
    """Run `tempclr ARGS` and return what a shell sees (returncode, stdout, stderr).

    In this process through Typer's CliRunner (no interpreter start-up and imports per call,
    which was most of the suite's time), or with `process=True` as `python -m tempclr_cli`
    in a subprocess: for what only a real process shows."""
    env = {"OMP_NUM_THREADS": "1", "COLUMNS": "200", **(env_extra or {})}
    if process:
        return subprocess.run(
            [sys.executable, "-m", "tempclr_cli", *args],
            capture_output=True,
            text=True,
            input=stdin,
            env={**os.environ, **env},
            cwd=cwd,
            timeout=600,
        )
    from typer.testing import CliRunner

    from tempclr_cli.cli import app

    with _cwd(cwd):
        result = CliRunner().invoke(app, list(args), input=stdin, env=env, prog_name="tempclr")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a bug in the command wrapper: show it, as a process would print a traceback
    return subprocess.CompletedProcess(["tempclr", *args], result.exit_code, result.stdout, result.stderr)


@contextmanager
def _cwd(path: Path | None):
    before = os.getcwd()
    if path is not None:
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


HEAVY = ("torch", "torchvision", "open_clip", "av", "transformers", "matplotlib")


def tempclr_imports(*args: str, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run `tempclr ARGS` in a fresh process; also the heavy modules it had imported when it
    exited (read inside the process, so the answer does not depend on how loaded the machine is)."""
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: sys.__stderr__.write('\\nIMPORTED=' + ','.join(m for m in {HEAVY!r} "
        "if m in sys.modules) + '\\n'))\n"
        "from tempclr_cli.cli import main\nsys.argv[0] = 'tempclr'\nmain()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"},
        timeout=600,
    )
    imported = done.stderr.rsplit("IMPORTED=", 1)[1].split() if "IMPORTED=" in done.stderr else ["?"]
    done.stderr = done.stderr.rsplit("\nIMPORTED=", 1)[0]
    return done, (imported[0].split(",") if imported and imported[0] else [])


def test_help_lists_subcommands_without_the_heavy_stack():
    result, imported = tempclr_imports("--help")
    assert result.returncode == 0
    for name in ("extract", "train", "align", "retrieve", "fewshot", "synth", "demo"):
        assert name in result.stdout
    assert imported == []


def test_version():
    result = tempclr("--version")
    assert result.returncode == 0 and result.stdout.startswith("tempclr ")


def test_recipe_typo_fails_with_one_line_and_exit_2(tmp_path):
    recipe = tmp_path / "x.yaml"
    recipe.write_text("data: {root: /data}\noptim: {lrr: 0.1}\n")
    result = tempclr("train", str(recipe))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == f"error: optim.lrr: unknown key in {recipe}; did you mean optim.lr?"


def test_print_recipe_emits_resolved_yaml_on_stdout():
    import yaml

    result = tempclr("train", str(ROOT / "recipes/tclr_synthetic.yaml"), "--set", "optim.lr=3e-4", "--print-recipe")
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert resolved["optim"]["lr"] == 3e-4 and resolved["data"]["size"] == 32


def test_error_text_in_brackets_is_printed_as_is(tmp_path):
    recipe = tmp_path / "x.yaml"
    recipe.write_text("data: {root: /data}\ntrain: {epochs: 0}\n")
    result = tempclr("train", str(recipe))
    assert result.returncode == 2
    assert "train.epochs: 0 is out of range [1, inf]" in result.stderr  # not eaten as rich markup


def test_shipped_recipes_by_name_from_any_folder(tmp_path):
    """The mission's own command, `tempclr train recipes/tclr_ucf.yaml`, outside the checkout (#29)."""
    listed = tempclr("train", "--list", cwd=tmp_path)
    assert listed.returncode == 0 and "tclr_ucf" in listed.stdout.split()
    for name in ("recipes/tclr_ucf.yaml", "tclr_ucf.yaml", "tclr_ucf"):
        shown = tempclr("train", name, "--print-recipe", cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert "root: /data/UCF101" in shown.stdout and "tclr_ucf.yaml" in shown.stderr  # the log says which file
    missing = tempclr("train", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "tempclr train --list" in missing.stderr
