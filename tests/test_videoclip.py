"""VideoCLIP / TempCLR's network (#28): MMFusionSeparate's forward against a re-typed copy of
MMPT's (file:line in each docstring; TempCLR's `tempclr/` package is the same code), and
the released fairseq checkpoint layout read safely and strictly."""

from __future__ import annotations

import argparse
import os

import pytest
import torch
import torch.nn.functional as F

from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.models.videoclip import (
    VideoCLIP,
    VideoCLIPConfig,
    layernorm_parameters,
    load_videoclip,
    read_released,
    text_batch,
)

CFG = VideoCLIPConfig(hidden=128, video_layers=2, text_layers=2, intermediate=256, vocab=60, positions=128)
CLS, SEP, PAD = 2, 3, 0


def _model(seed=0) -> VideoCLIP:
    torch.manual_seed(seed)
    model = VideoCLIP(CFG, CLS, SEP).eval()
    for p in model.parameters():  # LayerNorms away from 1/0, so a wrong order of operations shows
        p.data.add_(0.02 * torch.randn_like(p))
    return model


def _build_text_seq(pieces: list[int], max_len=96, max_video_len=32):
    """`processor.py:139-164` (`Aligner._build_text_seq`): [CLS, SEP] + pieces + [SEP] + pad."""
    full = [CLS, SEP] + pieces[: max_len - max_video_len - 3] + [SEP]
    padded = full + [PAD] * (max_len - len(full) - max_video_len)
    cmask = torch.zeros(len(padded), dtype=torch.bool)
    cmask[: len(full)] = True
    return torch.tensor(padded), cmask


def _extended(mask):
    """transformers 3.x `get_extended_attention_mask`: (1 - mask) x -10000 added to the scores."""
    return (1.0 - mask[:, None, None, :].float()) * -10000.0


def reference_video(model: VideoCLIP, vfeats, vmasks, caps, cmasks):
    """`mmfusion.py:415-456` (forward_video) with `mm.py:32-46` (VideoTokenMLP: linear1,
    activation, LayerNorm, linear2) and `mm.py:60-134` (MMBertEmbeddings: positions
    `position_ids[:, :L+1]` then `[max_video_len+1 : max_video_len+2]`, word + position + type,
    LayerNorm): returns the pooled video and the last layer."""
    enc = model.video_encoder
    mlp = enc.videomlp
    v = F.linear(vfeats, mlp.linear1.weight, mlp.linear1.bias)
    v = F.gelu(v)
    v = F.layer_norm(v, (v.shape[-1],), mlp.LayerNorm.weight, mlp.LayerNorm.bias, 1e-5)
    v = F.linear(v, mlp.linear2.weight, mlp.linear2.bias)
    emb = enc.bert.embeddings
    input_ids = caps[:, :2]
    words = emb.word_embeddings(input_ids)
    x = torch.cat([words[:, :1], v, words[:, 1:]], dim=1)
    L = vfeats.shape[1]
    position_ids = torch.arange(CFG.positions)[None]
    position_ids = torch.cat([position_ids[:, : L + 1], position_ids[:, 33:34]], dim=1)
    x = x + emb.position_embeddings(position_ids)
    x = x + emb.token_type_embeddings(torch.zeros(x.shape[:2], dtype=torch.long))
    x = F.layer_norm(x, (x.shape[-1],), emb.LayerNorm.weight, emb.LayerNorm.bias, 1e-12)
    attention = torch.cat([cmasks[:, :1], vmasks, cmasks[:, 1:2]], dim=1)
    for layer in enc.bert.encoder.layer:  # transformers' BertLayer (the release's is transformers 3.x's)
        out = layer(x, attention_mask=_extended(attention))
        x = out[0] if isinstance(out, tuple) else out
    B = vfeats.shape[0]
    pool = torch.cat([torch.zeros(B, 1, dtype=torch.bool), vmasks, torch.ones(B, 1, dtype=torch.bool)], dim=1)
    pool = pool.float() / pool.sum(1, keepdim=True)
    return torch.bmm(x.transpose(2, 1), pool.unsqueeze(2)).squeeze(-1), x


def reference_text(model: VideoCLIP, caps, cmasks):
    """`mmfusion.py:458-499` (forward_text): [CLS] + caps[2:], mask [cmask0, cmask[2:]], token
    types 0, default positions; pooled over `[0, cmask[2:]]`."""
    ids = torch.cat([caps[:, :1], caps[:, 2:]], dim=1)
    mask = torch.cat([cmasks[:, :1], cmasks[:, 2:]], dim=1)
    out = model.text_encoder(input_ids=ids, attention_mask=mask.long(), token_type_ids=torch.zeros_like(ids))
    hidden = out.last_hidden_state
    pool = torch.cat([torch.zeros(len(caps), 1, dtype=torch.bool), cmasks[:, 2:]], dim=1).float()
    pool = pool / pool.sum(1, keepdim=True)
    return torch.bmm(hidden.transpose(2, 1), pool.unsqueeze(2)).squeeze(-1)


def _video_inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    lengths = [32, 20, 7]
    vfeats = torch.zeros(3, 32, 512)
    vmasks = torch.zeros(3, 32, dtype=torch.bool)
    for b, n in enumerate(lengths):
        vfeats[b, :n] = F.normalize(torch.randn(n, 512, generator=g), dim=-1)
        vmasks[b, :n] = True
    return vfeats, vmasks, lengths


def test_video_and_text_passes_match_mmpt():
    model = _model()
    vfeats, vmasks, lengths = _video_inputs()
    pieces = [[5, 6, 7], list(range(4, 60)) * 2, [9]]  # the second is cut to 61 pieces
    built = [_build_text_seq(p) for p in pieces]
    caps, cmasks = torch.stack([c for c, _ in built]), torch.stack([m for _, m in built])
    with torch.no_grad():
        ref_video, ref_hidden = reference_video(model, vfeats, vmasks, caps, cmasks)
        ours = model.video(vfeats, vmasks)
        torch.testing.assert_close(ours, ref_video, atol=1e-5, rtol=0)
        per_second = model.video_tokens(vfeats, vmasks)
        torch.testing.assert_close(per_second, ref_hidden[:, 1:33], atol=1e-5, rtol=0)
        ids, mask = text_batch(pieces, CLS, SEP, PAD)
        assert torch.equal(ids, torch.cat([caps[:, :1], caps[:, 2:]], 1))  # the text pass's own ids
        torch.testing.assert_close(model.text(ids, mask), reference_text(model, caps, cmasks), atol=1e-5, rtol=0)


def test_a_short_video_needs_no_padding():
    """Unpadded (B, L) features give the padded pass's pooled embedding (masks do their job)."""
    model = _model()
    vfeats, vmasks, lengths = _video_inputs()
    with torch.no_grad():
        padded = model.video(vfeats, vmasks)[2]
        alone = model.video(vfeats[2:3, : lengths[2]])[0]
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=0)


# --- the released files -------------------------------------------------------------------------


def _fairseq_file(path, model: VideoCLIP, extra: dict | None = None, drop: str | None = None):
    """A checkpoint in fairseq's layout: `args` (argparse.Namespace), `model` with `mmmodel.`
    keys in fp16 and transformers-3 position_ids buffers, optimizer history and state."""
    state = {f"mmmodel.{k}": v.half() for k, v in model.state_dict().items()}
    state["mmmodel.text_encoder.embeddings.position_ids"] = torch.arange(CFG.positions)[None]
    state["mmmodel.video_encoder.bert.embeddings.position_ids"] = torch.arange(CFG.positions)[None]
    if drop:
        state.pop(f"mmmodel.{drop}")
    state.update(extra or {})
    torch.save(
        {
            "args": argparse.Namespace(arch="mmfusion", lr=[2e-5], fp16=True),
            "model": state,
            "optimizer_history": [{"criterion_name": "MMCriterion", "num_updates": 10}],
            "extra_state": {"epoch": 3},
            "last_optimizer_state": {"state": {0: {"exp_avg": torch.zeros(3)}}},
        },
        path,
    )
    return path


def test_a_fairseq_checkpoint_loads_strictly_and_safely(tmp_path):
    model = _model()
    loaded = load_videoclip(_fairseq_file(tmp_path / "checkpoint_best.pt", model), (CLS, SEP))
    assert loaded.cfg == CFG
    vfeats, vmasks, _ = _video_inputs()
    with torch.no_grad():  # the same network, up to the fp16 the weights were stored in
        torch.testing.assert_close(loaded.video(vfeats, vmasks), model.video(vfeats, vmasks), atol=2e-2, rtol=0)


def test_missing_extra_and_code_are_refused_by_name(tmp_path):
    model = _model()
    with pytest.raises(TempclrError, match="missing video_encoder.videomlp.linear2.bias"):
        load_videoclip(_fairseq_file(tmp_path / "a.pt", model, drop="video_encoder.videomlp.linear2.bias"))
    with pytest.raises(TempclrError, match="unexpected video_encoder.head.weight"):
        load_videoclip(_fairseq_file(tmp_path / "b.pt", model, {"mmmodel.video_encoder.head.weight": torch.zeros(2)}))
    evil = tmp_path / "evil.pt"
    torch.save({"args": os.system, "model": {}}, evil)  # a pickled callable
    with pytest.raises(TempclrError, match="refused.*system"):
        read_released(evil)
    assert not (tmp_path / "pwned").exists()


def test_layernorm_only_is_tempclrs_selection():
    names = layernorm_parameters(_model())
    assert names and all(n.split(".")[-2] == "LayerNorm" for n in names)
    # every BERT layer has two LayerNorms, each encoder one for its embeddings, the video MLP one
    layers = CFG.video_layers + CFG.text_layers
    assert len(names) == 2 * (2 * layers + 2 + 1)


# --- the released network in the commands --------------------------------------------------------

WORDS = [
    "add",
    "the",
    "onion",
    "stir",
    "pan",
    "oil",
    "salt",
    "cut",
    "tomato",
    "heat",
    "serve",
    "mix",
    "pour",
    "water",
    "boil",
    "egg",
    "crack",
    "whisk",
    "bowl",
    "fry",
]


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A TempCLR checkpoint in fairseq's layout with a tokenizer folder beside it, S3D-like
    features of three videos (one .npy each, 512-d unit rows), steps and YouCookII annotations."""
    import json

    import numpy as np

    root = tmp_path_factory.mktemp("videoclip")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    vocab += [f"w{i}" for i in range(CFG.vocab - len(vocab))]
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "vocab.txt").write_text("\n".join(vocab) + "\n")
    ckpt = _fairseq_file(root / "checkpoint_layernorm_DTW.pt", _model())
    rng = np.random.default_rng(0)
    (root / "feats").mkdir()
    db = {}
    for k, length in enumerate((40, 25, 70)):
        x = rng.standard_normal((length, 512)).astype(np.float32)
        np.save(root / "feats" / f"v{k}.npy", (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16))
        db[f"v{k}"] = {
            "subset": "validation",
            "duration": float(length),
            "annotations": [
                {"segment": [2, 9], "sentence": "crack the egg"},
                {"segment": [12, 20], "sentence": "whisk in a bowl"},
                {"segment": [21, 24 + k], "sentence": f"fry the {WORDS[k]}"},
            ],
        }
    (root / "ann.json").write_text(json.dumps({"database": db}))
    (root / "steps.txt").write_text("crack the egg\nwhisk in a bowl\nfry it\n")
    return root, ckpt


def test_align_retrieve_and_localize_run_the_released_network(released):
    """The three commands with --checkpoint a released file, on S3D-like features without an index."""
    import json

    from test_cli import tempclr

    root, ckpt = released
    aligned = tempclr(
        "align", str(root / "feats" / "v2.npy"), str(root / "steps.txt"), "--checkpoint", str(ckpt), "-f", "json"
    )
    assert aligned.returncode == 0, aligned.stderr
    steps = json.loads(aligned.stdout)["steps"]
    assert [s["text"] for s in steps] == ["crack the egg", "whisk in a bowl", "fry it"]
    assert steps[0]["start"] <= steps[1]["start"] <= steps[2]["start"]
    found = tempclr(
        "retrieve",
        str(root / "feats"),
        "--annotations",
        str(root / "ann.json"),
        "--checkpoint",
        str(ckpt),
        "--measure",
        "capavg",
        "--measure",
        "dtw",
        "--json",
    )
    assert found.returncode == 0, found.stderr
    out = json.loads(found.stdout)
    assert out["videos"] == 3 and set(out["results"]) == {"capavg", "dtw"}
    located = tempclr(
        "localize",
        str(root / "feats"),
        "--annotations",
        str(root / "ann.json"),
        "--format",
        "youcook2",
        "--split",
        "validation",
        "--checkpoint",
        str(ckpt),
        "--json",
    )
    assert located.returncode == 0, located.stderr
    assert 0 <= json.loads(located.stdout)["recall"] <= 100


def test_segments_pool_through_the_video_encoder_and_seconds_average_their_windows(released):
    from tempclr_cli.core.models.videoclip import load_videoclip_heads

    root, ckpt = released
    heads = load_videoclip_heads(ckpt)
    assert heads.tokenizer("Crack the EGG", add_special_tokens=False)["input_ids"] == [
        5 + WORDS.index(w) for w in ("crack", "the", "egg")
    ]
    x = torch.nn.functional.normalize(torch.randn(70, 512, generator=torch.Generator().manual_seed(3)), dim=-1)
    per_second = heads.video(x[None])[0]
    m = heads.model
    with torch.no_grad():  # windows [0, 32), [16, 48), [32, 64), [48, 70): the last reaches the end
        w = [m.video_tokens(x[None, s:e])[0] for s, e in ((0, 32), (16, 48), (32, 64), (48, 70))]
    torch.testing.assert_close(per_second[:16], w[0][:16])
    torch.testing.assert_close(per_second[20], (w[0][20] + w[1][4]) / 2)
    torch.testing.assert_close(per_second[69], w[3][21])
    torch.testing.assert_close(heads.segment(x[2:9]), m.video(x[None, 2:9])[0])


def test_convert_writes_safetensors_that_give_the_same_steps(released, tmp_path):
    import json
    import shutil

    from test_cli import tempclr

    root, ckpt = released
    out = tmp_path / "videoclip.safetensors"
    done = tempclr("convert", str(ckpt), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["out"] == str(out) and out.stat().st_size < ckpt.stat().st_size
    shutil.copytree(root / "tokenizer", tmp_path / "tokenizer")
    args = [str(root / "feats" / "v0.npy"), str(root / "steps.txt"), "-f", "json"]
    a = tempclr("align", *args, "--checkpoint", str(ckpt))
    b = tempclr("align", *args, "--checkpoint", str(out))
    assert a.returncode == b.returncode == 0, b.stderr
    assert json.loads(a.stdout)["steps"] == json.loads(b.stdout)["steps"]
    bad = tempclr("convert", str(ckpt), "-o", str(tmp_path / "x.pt"))
    assert bad.returncode == 2 and ".safetensors" in bad.stderr


def test_without_a_tokenizer_the_error_says_what_to_download(released, tmp_path, monkeypatch):
    import shutil

    from test_cli import tempclr

    root, ckpt = released
    alone = shutil.copy(ckpt, tmp_path / "checkpoint_best.pt")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TEMPCLR_BERT_TOKENIZER", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    args = [str(root / "feats" / "v0.npy"), str(root / "steps.txt"), "--checkpoint", str(alone)]
    result = tempclr("align", *args)
    assert result.returncode == 2 and "bert-base-uncased" in result.stderr and "tokenizer/" in result.stderr
    assert tempclr("align", *args, "--tokenizer", str(root / "tokenizer")).returncode == 0  # or name the folder


@pytest.mark.slow
def test_layernorm_tuning_trains_and_saves_only_the_layernorms(released, tmp_path):
    """`loss.kind: videoclip` with the shipped layernorm recipe: only LayerNorm parameters move,
    the run's checkpoint holds them and its base's path, and `align --checkpoint` uses it."""
    import json

    from test_cli import tempclr

    from tempclr_cli.core.checkpoint import load_checkpoint

    root, ckpt = released
    ann = json.loads((root / "ann.json").read_text())
    for entry in ann["database"].values():
        entry["subset"] = "training"
    (tmp_path / "train.json").write_text(json.dumps(ann))
    run = tmp_path / "run"
    done = tempclr(
        "train",
        "tempclr_videoclip_layernorm",
        "--set",
        f"data.root={root / 'feats'}",
        "--set",
        f"data.annotations={tmp_path / 'train.json'}",
        "--set",
        f"model.checkpoint={ckpt}",
        "--set",
        "data.units=3",
        "--set",
        "train.epochs=2",
        "--set",
        "train.batch_size=3",
        "--set",
        "optim.lr=1e-2",
        "--run-dir",
        str(run),
        "--device",
        "cpu",
        "-q",
    )
    assert done.returncode == 0, done.stderr
    state = load_checkpoint(run / "last.pt")
    from tempclr_cli.core.io import sha256_file

    assert state["kind"] == "videoclip" and state["model_args"] == {
        "base": str(ckpt.resolve()),
        "base_sha256": sha256_file(ckpt),
        "train": "layernorm",
    }
    base = load_videoclip(ckpt, (CLS, SEP)).state_dict()
    saved = {k.removeprefix("net."): v for k, v in state["model"].items()}
    assert set(saved) == set(layernorm_parameters(_model()))  # nothing else is written
    assert any(not torch.equal(saved[k], base[k]) for k in saved)  # they learned
    aligned = tempclr(
        "align",
        str(root / "feats" / "v1.npy"),
        str(root / "steps.txt"),
        "--checkpoint",
        str(run / "last.pt"),
        "-f",
        "json",
    )
    assert aligned.returncode == 0, aligned.stderr
    assert len(json.loads(aligned.stdout)["steps"]) == 3
    # #37: the run names its base by content too: another file put at that path is refused, not used
    import shutil

    shutil.copy(ckpt, tmp_path / "original.pt")
    _fairseq_file(ckpt, _model(seed=5))
    try:
        swapped = tempclr(
            "align",
            str(root / "feats" / "v1.npy"),
            str(root / "steps.txt"),
            "--checkpoint",
            str(run / "last.pt"),
            "-f",
            "json",
        )
    finally:
        shutil.copy(tmp_path / "original.pt", ckpt)
    assert swapped.returncode == 2 and "not the file it was trained from" in swapped.stderr
