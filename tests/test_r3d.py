"""The TCLR model: torchvision's R3D-18 with layer4 dilated in time, and its head."""

from __future__ import annotations

import torch
from torchvision.models.video import r3d_18

from tempclr_cli.core.models.r3d import TCLRModel, build_backbone, feature_map


def test_layer4_keeps_four_time_steps_and_params_match_torchvision():
    backbone = build_backbone("r3d18").eval()
    with torch.no_grad():
        maps = feature_map(backbone, torch.rand(1, 3, 16, 112, 112))
    assert maps.shape == (1, 512, 4)
    reference = r3d_18(weights=None)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(backbone) == count(reference) - count(reference.fc)


def test_model_returns_the_embeddings_the_losses_take():
    model = TCLRModel("r3d18-small", proj_dim=32)
    g, l = torch.rand(2, 3, 3, 16, 32, 32), torch.rand(2, 3, 4, 3, 16, 32, 32)
    views, slices, local = model(g, l)
    assert views.shape == (2, 3, 32) and slices.shape == (2, 3, 4, 32) and local.shape == (2, 3, 4, 32)
    for x in (views, slices, local):
        torch.testing.assert_close(x.norm(dim=-1), torch.ones(x.shape[:-1]))
