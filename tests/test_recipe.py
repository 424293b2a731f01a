"""Recipes: inheritance, overrides and the error messages a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.train.recipe import load_recipe, recipe_to_yaml

RECIPES = Path(__file__).parents[1] / "recipes"


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_load(path):
    recipe = load_recipe(path)
    assert recipe.data.root


def test_base_is_merged_deeply_and_paths_resolve_against_the_recipe(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.yaml").write_text("data: {root: data, size: 64}\noptim: {lr: 0.5}\n")
    (tmp_path / "sub" / "child.yaml").write_text("base: ../base.yaml\ndata: {size: 32}\n")
    recipe = load_recipe(tmp_path / "sub" / "child.yaml")
    assert recipe.data.size == 32
    assert recipe.optim.lr == 0.5
    assert recipe.data.root == str((tmp_path / "data").resolve())


def test_overrides_are_parsed_as_yaml(tmp_path):
    (tmp_path / "r.yaml").write_text("data: {root: /x}\n")
    recipe = load_recipe(tmp_path / "r.yaml", ["optim.lr=3e-4", "eval.topk=[1, 5]", "train.amp=false"])
    assert recipe.optim.lr == 3e-4 and recipe.eval.topk == [1, 5] and recipe.train.amp is False


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ("data: {root: /x}\noptim: {lrr: 1}\n", [], r"optim\.lrr: unknown key in .*r\.yaml; did you mean optim\.lr\?"),
        ("data: {root: /x}\noptimm: {lr: 1}\n", [], r"optimm: unknown key .*did you mean optim\?"),
        ("data: {root: /x}\ntrain: {epochs: ten}\n", [], r"train\.epochs: expected int, got 'ten'"),
        ("data: {root: /x}\ntrain: {epochs: 0}\n", [], r"train\.epochs: 0 is out of range \[1, inf\]"),
        ("data: {root: /x}\nloss: {scaling: odd}\n", [], r"loss\.scaling: 'odd' is not one of official, mean"),
        ("model: {dim: 3}\n", [], r"data: required but missing|data\.root: required but missing"),
        ("data: {root: /x}\n", ["optim.lr"], r"expected KEY=VALUE"),
        ("data: {root: /x}\n", ["optim.betas=[0.9, x]"], r"optim\.betas\[1\]: expected float"),
        ("[1, 2]\n", [], r"a recipe must be a mapping"),
        ("data: {root: /x\n", [], r"invalid YAML"),
    ],
)
def test_invalid_recipes_fail_with_a_clear_message(tmp_path, text, overrides, message):
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(TempclrError, match=message):
        load_recipe(tmp_path / "r.yaml", overrides)


def test_resolved_recipe_round_trips_through_yaml(tmp_path):
    recipe = load_recipe(RECIPES / "tclr_synthetic.yaml")
    (tmp_path / "resolved.yaml").write_text(recipe_to_yaml(recipe))
    assert load_recipe(tmp_path / "resolved.yaml") == recipe


def test_a_typo_in_an_override_names_the_override(tmp_path):
    (tmp_path / "r.yaml").write_text("data: {root: /x}\n")
    with pytest.raises(TempclrError, match=r"optim\.lrr: unknown key in --set overrides.*did you mean optim\.lr\?"):
        load_recipe(tmp_path / "r.yaml", ["optim.lrr=1"])
