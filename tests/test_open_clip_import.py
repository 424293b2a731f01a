"""open_clip imported lean (no torch._dynamo, timm or torchvision model zoo) for one-call latency; nothing lost.

Each case runs in a fresh interpreter: this test process has open_clip imported already.
"""

from __future__ import annotations

import pytest

import json
import subprocess
import sys
import textwrap

import numpy as np
from test_cli import tempclr


def fresh(code: str) -> dict:
    """Run `code` in a new interpreter; it prints one JSON document and nothing else."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_lean_import_leaves_out_the_compiler_and_timm_and_both_still_work_afterwards():
    out = fresh("""
        import json, sys
        import torch
        from tempclr_cli.core.encode.open_clip_import import import_open_clip
        open_clip = import_open_clip("tiny")
        lean = {"dynamo": "torch._dynamo" in sys.modules, "timm": "timm" in sys.modules,
                "transformers": "transformers" in sys.modules, "stand_in_left": "torch._dynamo.utils" in sys.modules,
                "wcwidth": "wcwidth" in sys.modules,
                "torchvision_zoo": [m for m in ("torchvision.models", "torchvision.datasets") if m in sys.modules]}
        import torchvision
        zoo = [type(torchvision.models.resnet18(num_classes=3)).__name__,  # the stand-in's attribute, then real
               type(torchvision.datasets.FakeData(size=1)).__name__]
        from torchvision.models.video import r3d_18  # tempclr's TCLR backbone
        zoo += [type(r3d_18()).__name__, type(sys.modules["torchvision.models"]).__name__]
        import ftfy, wcwidth
        widths = [ftfy.formatting.display_ljust("日本", 5, "."), wcwidth.wcswidth("日本")]  # lazy, then real
        import torchvision.ops
        module = sys.modules["torchvision.ops.roi_align"]
        boxes = torch.tensor([[0, 0.0, 0.0, 3.0, 3.0]])
        pooled = torchvision.ops.roi_align(torch.arange(16.0).view(1, 1, 4, 4), boxes, output_size=1).item()
        import torch._dynamo.utils as real
        same = module.is_compile_supported("cpu") == real.is_compile_supported("cpu")
        compiled = torch.compile(lambda x: x * 2 + 1, backend="eager")(torch.ones(3)).tolist()
        import timm
        print(json.dumps({**lean, "pooled": pooled, "same": same, "compiled": compiled,
                          "timm_later": hasattr(timm, "create_model"), "tokens": open_clip.tokenize(["a"]).shape[1],
                          "widths": widths, "zoo": zoo}))
    """)
    assert out == {
        "dynamo": False,
        "timm": False,
        "transformers": False,
        "stand_in_left": False,
        "wcwidth": False,
        "torchvision_zoo": [],
        "zoo": ["ResNet", "FakeData", "VideoResNet", "module"],
        "widths": ["日本.", 4],
        "pooled": 7.5,
        "same": True,
        "compiled": [3.0, 3.0, 3.0],
        "timm_later": True,
        "tokens": 77,
    }


@pytest.mark.slow
def test_a_timm_tower_gets_timm_even_after_a_lean_import():
    out = fresh("""
        import json, sys
        from tempclr_cli.core.encode.open_clip_import import import_open_clip
        import_open_clip("tiny")
        before = sys.modules["open_clip.timm_model"].timm is None
        open_clip = import_open_clip("ViT-B-16-SigLIP")  # a timm-backed vision tower
        tower = open_clip.model.TimmModel("resnet18", embed_dim=8, image_size=32)  # the class open_clip builds with
        print(json.dumps({"before": before, "after": sys.modules["open_clip.timm_model"].timm is not None,
                          "params": sum(p.numel() for p in tower.parameters()) > 1_000_000}))
    """)
    assert out == {"before": True, "after": True, "params": True}
    out = fresh("""
        import json, sys
        from tempclr_cli.core.encode.open_clip_import import import_open_clip
        for name in ("ViT-B-16-SigLIP", None, "local-dir:/models/x"):
            import_open_clip(name)
        print(json.dumps({"timm": sys.modules["open_clip.timm_model"].timm is not None}))
    """)
    assert out == {"timm": True}


@pytest.mark.slow
def test_a_hugging_face_text_tower_gets_transformers_even_after_a_lean_import():
    """#36: a tiny model leaves transformers out (0.9 s of every align call); roberta-ViT-B-32 needs it."""
    pytest.importorskip("transformers")
    out = fresh("""
        import json, sys
        from tempclr_cli.core.encode.open_clip_import import import_open_clip
        import_open_clip("tiny")
        before = sys.modules["open_clip.hf_model"].transformers is None and "transformers" not in sys.modules
        open_clip = import_open_clip("roberta-ViT-B-32")
        hf = sys.modules["open_clip.hf_model"]
        print(json.dumps({"before": before, "after": hf.transformers is not None,
                          "config": hf.AutoConfig is sys.modules["transformers"].AutoConfig}))
    """)
    assert out == {"before": True, "after": True, "config": True}


@pytest.mark.slow
def test_weights_that_need_no_download_leave_the_hub_out_and_a_tag_brings_it_back():
    """#36: huggingface_hub (with httpx: 0.5 s of every call) is left out for random, shipped or local
    weights; a weight tag, which may be downloaded, gets open_clip's download function back."""
    out = fresh("""
        import json, sys
        from tempclr_cli.core.encode.open_clip_import import import_open_clip
        import_open_clip("tiny", "synthetic")
        pretrained = sys.modules["open_clip.pretrained"]
        before = pretrained.hf_hub_download is None and "huggingface_hub" not in sys.modules
        import_open_clip("ViT-B-32", "openai")
        print(json.dumps({"before": before, "after": sys.modules["open_clip.pretrained"].hf_hub_download is not None}))
    """)
    assert out == {"before": True, "after": True}


@pytest.mark.slow
def test_the_stand_in_hands_over_to_the_real_module_for_any_other_name():
    out = fresh("""
        import json, sys
        import torch
        from tempclr_cli.core.encode.open_clip_import import STAND_INS, _StandIn
        name = "torch._dynamo.utils"
        stand_in = sys.modules[name] = _StandIn(name, STAND_INS[name])
        from torch._dynamo.utils import counters  # not among the stand-in's own names
        print(json.dumps({"real": sys.modules["torch._dynamo.utils"] is not stand_in,
                          "counters": counters is sys.modules["torch._dynamo.utils"].counters}))
    """)
    assert out == {"real": True, "counters": True}


@pytest.mark.slow
def test_align_gives_the_same_steps_with_the_lean_import_as_with_a_full_one(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((40, 64)).astype(np.float16))
    (tmp_path / "steps.txt").write_text("cut the onion\nfry it\nserve\n")
    args = [
        str(tmp_path / "x.npy"),
        str(tmp_path / "steps.txt"),
        "--model",
        "tiny",
        "--pretrained",
        "none",
        "--device",
        "cpu",
    ]
    lean = tempclr("align", *args, "-f", "json", process=True)  # the lean import happens in a fresh process
    assert lean.returncode == 0, lean.stderr
    full = fresh(f"""
        import json
        import open_clip, timm, torch._dynamo  # everything imported the ordinary way first
        from tempclr_cli import align
        print(align({args[0]!r}, {args[1]!r}, model="tiny", pretrained="none", device="cpu").to_json())
    """)
    assert json.loads(lean.stdout)["steps"] == full["steps"]


@pytest.mark.parametrize("name", ["tiny", "ViT-B-32", "RN50", "coca_ViT-B-32"])
def test_the_default_tokenizer_is_open_clips_own_and_tokenizes_the_same(name):
    """#36: a model with open_clip's default BPE tokenizer uses the one open_clip builds on import (0.1 s
    less a call), with the same tokens as get_tokenizer's fresh copy."""
    import open_clip
    import torch

    from tempclr_cli.core.encode.clip_encoder import _register_shipped_configs, _tokenizer

    _register_shipped_configs(open_clip)
    texts = ["crack the eggs", "whisk them until frothy", ""]
    assert torch.equal(_tokenizer(open_clip, name)(texts), open_clip.get_tokenizer(name)(texts))


@pytest.mark.slow
def test_an_align_call_ends_without_a_teardown_collection_and_still_writes_everything(tmp_path):
    """#36 item 12: `tempclr` freezes its objects out of the collector on the way out (the teardown's
    walk over torch's and open_clip's objects cost 0.3 s a call); what it wrote is whole, atexit ran."""
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((40, 64)).astype(np.float16))
    (tmp_path / "steps.txt").write_text("cut the onion\nfry it\nserve\n")
    code = textwrap.dedent("""
        import atexit, gc, sys
        atexit.register(lambda: sys.__stderr__.write(f"\\nFROZEN={gc.get_freeze_count()}\\n"))
        from tempclr_cli.cli import main
        sys.argv[0] = "tempclr"
        main()
    """)
    args = ["align", "x.npy", "steps.txt", "--model", "tiny", "--pretrained", "none", "--device", "cpu", "-q"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args, "-f", "all", "--output-dir", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stderr.rsplit("FROZEN=", 1)[1]) > 100_000  # torch alone leaves this many objects
    written = json.loads((tmp_path / "out" / "x.json").read_text())
    assert [step["text"] for step in written["steps"]] == ["cut the onion", "fry it", "serve"]
    assert sorted(path.suffix for path in (tmp_path / "out").iterdir()) == [".csv", ".html", ".json", ".srt", ".vtt"]
