"""Where the field adds things, one registration adds one (#26): measures, output formats and
encoders, each tested over its whole registry (timm's way), and the worked examples of
docs/architecture.md run as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import tempclr

from tempclr_cli.core.align import measures
from tempclr_cli.core.align.formats import FORMATS
from tempclr_cli.core.align.steps import Alignment, StepTiming

ARCHITECTURE = Path(__file__).parents[1] / "docs" / "architecture.md"


def _unit(*shape, seed=0):
    return torch.nn.functional.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


@pytest.mark.parametrize("name", list(measures.MEASURES))
def test_every_measure_works_wherever_it_is_offered(name):
    from tempclr_cli.core.eval.fewshot import VideoSet, pair_distances
    from tempclr_cli.core.eval.paragraph_retrieval import Padded, score_matrix

    m = measures.MEASURES[name]
    if "fewshot" in m.tasks:
        videos = VideoSet(
            [str(i) for i in range(4)], _unit(4, 6, 8), torch.tensor([6, 4, 5, 6]), np.arange(4), list("abcd")
        )
        d = pair_distances(videos, np.array([[0, 0], [0, 1], [2, 3]]), name, 0.1)
        assert d.shape == (3,) and torch.isfinite(d).all() and d[0] <= d[1] + 1e-6  # a video is closest to itself
    if "retrieve" in m.tasks:
        text = Padded.of([_unit(3, 8, seed=1), _unit(2, 8, seed=2)])
        scores = score_matrix(text, Padded.of([_unit(5, 8, seed=3), _unit(7, 8, seed=4)]), name)
        assert scores.shape == (2, 2) and torch.isfinite(scores).all()
    if "loss" in m.tasks:
        from tempclr_cli.core.train.losses import video_contrastive_loss

        q = _unit(2, 5, 8).requires_grad_()
        video_contrastive_loss(q, _unit(2, 3, 6, 8, seed=5), name).backward()
        assert torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0


def test_commands_and_recipes_offer_exactly_the_registered_measures():
    from tempclr_cli.commands.fewshot import Distance
    from tempclr_cli.commands.retrieve import Measure
    from tempclr_cli.core.train.recipe import LOSS_MEASURES

    assert [d.value for d in Distance] == list(measures.names("fewshot"))
    assert [d.value for d in Measure] == list(measures.names("retrieve"))
    assert LOSS_MEASURES == measures.names("loss") and "dtw" not in LOSS_MEASURES  # hard DTW cannot train


def _alignment() -> Alignment:
    steps = [StepTiming(1, "crack <the> eggs --> bowl", 0.0, 2.0, 0.5), StepTiming(2, "whisk", 2.0, 4.5, 0.25)]
    return Alignment("v.npy", 4.5, steps, np.zeros((2, 5)), [0, 1, 2, 3, 4], [1, 2, 3, 4, 4.5])


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_renders_and_align_writes_it_by_suffix(fmt, tmp_path):
    text = _alignment().render(fmt, str(tmp_path / f"v.{fmt}"))
    assert "whisk" in text
    from tempclr_cli.commands.align import Format

    assert fmt in [f.value for f in Format]


def _snippets() -> list[str]:
    """The python code blocks of docs/architecture.md's worked examples, dedented."""
    doc = ARCHITECTURE.read_text()
    return [re.sub(r"(?m)^  ", "", block) for block in re.findall(r"```python\n(.*?)```", doc, re.S)]


@pytest.mark.slow
def test_the_worked_measure_and_format_examples_register_everywhere():
    """The docs' measure example, pasted into measures.py's namespace, and the format one, added
    to FORMATS, before the commands import: each is one registration and reaches the CLI."""
    measure = next(s for s in _snippets() if "register_measure" in s)
    fmt = re.search(r'`("md": lambda a, page, embed: .*?)`', ARCHITECTURE.read_text()).group(1)
    code = f"""
import json
from tempclr_cli.core.align import measures
from tempclr_cli.core.align.measures import register_measure, _masked
exec({measure!r})
from tempclr_cli.core.align.formats import FORMATS
FORMATS.update({{{fmt}}})
from typer.testing import CliRunner
from tempclr_cli.cli import app
runner = CliRunner()
print(json.dumps({{"fewshot": runner.invoke(app, ["fewshot", "--help"]).output,
                  "retrieve": runner.invoke(app, ["retrieve", "--help"]).output,
                  "align": runner.invoke(app, ["align", "--help"]).output}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    helps = json.loads(out.stdout)
    assert "median" in helps["fewshot"] and "median" in helps["retrieve"]
    assert "|md|" in helps["align"].replace(" ", "") or "md" in helps["align"]
    scope = {}
    exec("from tempclr_cli.core.align.measures import register_measure, _masked\n" + measure, scope)
    try:
        assert measures.MEASURES["median"].distance(torch.rand(3, 4, 5), None).shape == (3,)
    finally:
        measures.MEASURES.pop("median", None)


def test_models_lists_every_registered_encoder_offline():
    result = tempclr("models", "--json", env_extra={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"tiny", "r3d18", "r2plus1d18", "s3d-howto100m", "ViT-B-32"} <= set(rows)
    assert (
        rows["ViT-B-32"]["kind"] == "image-text"
        and rows["ViT-B-32"]["dim"] == 512
        and "openai" in rows["ViT-B-32"]["tags"]
    )
    assert rows["r3d18"]["text"] is False and rows["s3d-howto100m"]["fps"] == 30
    table = tempclr("models", "--kind", "video", env_extra={"COLUMNS": "80"})
    assert table.returncode == 0 and "r2plus1d18" in table.stdout and "ViT-B-32" not in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80


def _every_kind_of_heads():
    """One of each `Heads` implementation `load_heads` hands out (and IDENTITY, for no checkpoint)."""
    from test_videoclip import _model

    from tempclr_cli.core.models.heads import IDENTITY, HeadsConfig, TempCLRHeads
    from tempclr_cli.core.models.videoclip import VideoCLIPHeads

    class WordPieces:  # the tokenizer calls VideoCLIPHeads makes, on test_videoclip's 60-word vocabulary
        cls_token_id, sep_token_id, pad_token_id = 2, 3, 0

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [10 + len(word) for word in text.split()]}

    videoclip = VideoCLIPHeads(_model(), WordPieces()).eval()
    return {"identity": IDENTITY, "tempclr": TempCLRHeads(HeadsConfig(dim=16, heads=2)).eval(), "videoclip": videoclip}


@pytest.mark.parametrize("kind", ["identity", "tempclr", "videoclip"])
def test_every_kind_of_heads_keeps_the_heads_contract(kind):
    """#37: callers read the declared facts (raw, embeds_text, segment_pooling) instead of probing."""
    from tempclr_cli.core.models.heads import Heads, apply_text_head, apply_video_head

    heads = _every_kind_of_heads()[kind]
    assert isinstance(heads, Heads)
    assert heads.segment_pooling in ("clips", "network") and isinstance(heads.raw, bool)
    dim = 512 if kind == "videoclip" else 16
    clips = apply_video_head(heads, torch.randn(5, dim))
    sentences = heads.encode_text(["crack the eggs", "whisk"]) if heads.embeds_text else torch.randn(2, dim)
    text = apply_text_head(heads, sentences)
    assert clips.shape[0] == 5 and text.shape[0] == 2 and clips.shape[1] == text.shape[1]
    assert heads.segment(torch.randn(3, dim)).shape == (clips.shape[1],)
    if not heads.raw:  # unit vectors in: an untrained head is the identity (zero-initialised residual)
        x = torch.nn.functional.normalize(torch.randn(5, dim), dim=-1)
        assert torch.allclose(apply_video_head(heads, x), x, atol=1e-6)


def _weights_for(name: str, tmp_path: Path) -> str:
    """Cheap weights in each registration's released layout (random values)."""
    if name in ("r3d18", "r2plus1d18"):
        from test_tclr_fidelity import released_pth

        released_pth(tmp_path / f"{name}.pth", name, parallel=True)
        return str(tmp_path / f"{name}.pth")
    if name == "s3d-howto100m":
        from test_s3d import WORDS, _randomised

        torch.save(_randomised().float().state_dict(), tmp_path / "s3d_howto100m.pth")
        np.save(tmp_path / "s3d_dict.npy", WORDS)
        return str(tmp_path / "s3d_howto100m.pth")
    return "none"  # tiny and open_clip's architectures: random, seeded


@pytest.mark.parametrize(
    "name",
    ["tiny", "r3d18", *(pytest.param(n, marks=pytest.mark.slow) for n in ("r2plus1d18", "s3d-howto100m", "ViT-B-32"))],
)
def test_every_registered_encoder_keeps_the_encoder_contract(name, tmp_path):
    """#37: what a loader returns is an Encoder (a TextEncoder where the registration says it has a text
    tower) whose facts agree with its registration, and it embeds frames as the contract says."""
    from tempclr_cli.core.encode.registry import Encoder, TextEncoder, _ENCODERS, find_encoder, load_encoder

    assert set(_ENCODERS) <= {"tiny", "r3d18", "r2plus1d18", "s3d-howto100m"}, "a new registration: add it above"
    info = find_encoder(name)
    encoder = load_encoder(name, _weights_for(name, tmp_path), device="cpu")
    assert isinstance(encoder, TextEncoder if info.text else Encoder) and (
        info.text == isinstance(encoder, TextEncoder)
    )
    for fact, value in (
        ("frames_per_clip", encoder.frames_per_clip),
        ("fps", encoder.fps),
        ("input_size", encoder.image_size),
        ("dim", encoder.dim),
        ("protocol", encoder.protocol),
    ):
        declared = getattr(info, fact)
        assert declared == value or str(declared).endswith("*"), (fact, declared, value)  # "16*": the weights decide
    from tempclr_cli.core.media.sampling import FRAME_PROTOCOLS

    assert encoder.protocol in FRAME_PROTOCOLS  # how extract decodes its frames is an entry of that table
    n = 2 * encoder.frames_per_clip
    frames = np.random.default_rng(0).integers(0, 255, (n, encoder.image_size, encoder.image_size, 3), np.uint8)
    assert tuple(encoder.encode_images(frames).shape) == (n, encoder.dim)
    if info.text:
        assert tuple(encoder.encode_text(["crack the eggs", "whisk"]).shape) == (2, encoder.dim)


@pytest.mark.slow
def test_the_worked_encoder_and_heads_examples_reach_the_commands(tmp_path):
    """#37: docs/architecture.md's encoder and heads examples, each one implementation plus one
    registration, pasted as written before the commands import: `models` lists the encoder,
    `extract` runs it, and `align --checkpoint` applies the heads a checkpoint of their kind names."""
    from videos import cfr

    encoder = next(s for s in _snippets() if "class MeanColour" in s)
    heads = next(s for s in _snippets() if "class ScaledHeads" in s)
    cfr(tmp_path / "videos" / "v.mp4", 4.0)
    (tmp_path / "steps.txt").write_text("first\nsecond\n")
    code = (
        encoder
        + heads
        + f"""
import json, numpy as np
from typer.testing import CliRunner
from tempclr_cli.cli import app
from tempclr_cli.core.checkpoint import save_checkpoint
from tempclr_cli.core.encode.registry import Encoder, load_encoder
from tempclr_cli.core.models.heads import Heads, load_heads
run = CliRunner().invoke
listed = run(app, ["models", "--json"]).stdout
extracted = run(app, ["extract", {str(tmp_path / "videos")!r}, "-o", {str(tmp_path / "feats")!r},
                      "--model", "mean-colour", "--workers", "0", "-q"])
meta = {{"encoder_model": "mean-colour", "encoder_pretrained": "none", "encoder_seed": 0}}
save_checkpoint({str(tmp_path / "scaled.pt")!r}, {{"kind": "scaled", "scale": 2.0, "meta": meta}})
loaded, _ = load_heads({str(tmp_path / "scaled.pt")!r})
print(json.dumps({{"listed": [r["name"] for r in json.loads(listed)],
                   "extract": extracted.exit_code,
                   "shape": list(np.load({str(tmp_path / "feats" / "v.npy")!r}).shape),
                   "protocols": [isinstance(load_encoder("mean-colour", "none"), Encoder), isinstance(loaded, Heads)],
                   "scale": loaded.video(np.ones((1, 2, 3)), None).tolist()}}))
"""
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert "mean-colour" in out["listed"] and out["extract"] == 0 and out["shape"] == [4, 3]
    assert out["protocols"] == [True, True] and out["scale"] == [[[2.0] * 3] * 2]
