"""Figure 5 measured from instance masks: instance cells, selectivity, spread, category scores and the
Network Dissection IoU, roles against the control family, and the version-4 profile."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import needs_stamps
from sklearn.metrics import roc_auc_score

from lewel.maps import object_coverage
from lewel.maps.patterns import (
    PATTERN_ROLES,
    UNDECIDED,
    InstanceCells,
    PatternScores,
    assign_patterns,
    cell_auroc,
    count_patterns,
    dissection_iou,
    instance_aurocs,
    instance_cells,
    instance_labels,
    pattern_thresholds,
    preferred_categories,
    score_patterns,
    selectivity,
    spread,
)
from lewel.maps.profiles import (
    ProfileError,
    build_profile,
    category_indices,
    format_profile,
    has_patterns,
    pattern_indices,
    patterns_note,
    profile_categories,
    read_profile,
    summarize_patterns,
    write_profile,
)



def _two_instances(side: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """An 8×8 image with instance 0 on the top-left 4×4 block and instance 1 on the bottom-right one."""
    instances = np.zeros((2, side, side), dtype=bool)
    instances[0, :4, :4] = True
    instances[1, 4:, 4:] = True
    return instances, instances.any(axis=0)


def _cells(instances: np.ndarray, categories: tuple[str, ...], grid=(4, 4)) -> InstanceCells:
    union = instances.any(axis=0)
    return instance_cells(instance_labels(instances), categories, object_coverage(torch.from_numpy(union), grid), grid)


def test_instance_labels_keep_the_smaller_instance_where_they_overlap() -> None:
    instances = np.zeros((2, 6, 6), dtype=bool)
    instances[0, :, :] = True  # the large one
    instances[1, 2:4, 2:4] = True
    labels = instance_labels(instances)
    assert labels[3, 3] == 2 and labels[0, 0] == 1 and (labels == 2).sum() == 4
    assert instance_labels(np.zeros((0, 3, 5), dtype=bool)).shape == (3, 5)


def test_instance_cells_name_background_instance_and_undecided_cells() -> None:
    instances, _ = _two_instances()
    instances[1, 4, 4] = instances[1, 4, 5] = instances[1, 5, 4] = False  # cell (2, 2): a quarter covered
    cells = _cells(instances, ("cat", "dog"))
    labels = cells.labels
    assert labels[0, 0] == 1 and labels[1, 1] == 1 and labels[3, 3] == 2
    assert labels[0, 3] == 0 and labels[3, 0] == 0
    assert labels[2, 2] == -1  # neither object (>= 0.5) nor background (<= 0.1): no kind
    assert set(cells.category_coverage) == {"cat", "dog"}
    assert float(cells.category_coverage["cat"].sum()) == pytest.approx(4.0)


def test_cell_auroc_equals_sklearn_and_is_nan_without_both_sets() -> None:
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(5, 20, generator=generator)
    values[0, :4] = values[0, 4]  # ties count half, as in sklearn
    positive = torch.zeros(20, dtype=torch.bool)
    positive[:7] = True
    negative = ~positive
    negative[15:] = False  # neither set
    result = cell_auroc(values, positive, negative)
    keep = (positive | negative).numpy()
    for m in range(5):
        assert result[m].item() == pytest.approx(roc_auc_score(positive.numpy()[keep], values[m].numpy()[keep]))
    assert cell_auroc(values, positive, torch.zeros(20, dtype=torch.bool)).isnan().all()


def test_selectivity_singles_out_one_instance_or_treats_them_alike() -> None:
    instances, union = _two_instances()
    cells = _cells(instances, ("cat", "dog")).labels.flatten()
    on_first = object_coverage(torch.from_numpy(instances[0]), (4, 4)).flatten() + 0.01
    on_both = object_coverage(torch.from_numpy(union), (4, 4)).flatten() + 0.01
    values = torch.stack([on_first, on_both, torch.ones(16)])
    assert selectivity(values, cells).tolist() == [1.0, 0.5, 0.5]
    one = _cells(instances[:1], ("cat",)).labels.flatten()
    assert selectivity(values, one).isnan().all()
    per_instance = instance_aurocs(values, cells, 2)
    assert per_instance.shape == (2, 3) and per_instance[0, 0] == 1.0 and per_instance[1, 0] == 0.5


def test_spread_is_scale_free_one_for_flat_maps_zero_for_one_cell() -> None:
    flat = torch.full((5, 5), 0.04)
    peak = torch.zeros(5, 5)
    peak[2, 2] = 1.0
    noisy = torch.rand(5, 5, generator=torch.Generator().manual_seed(1))
    values = spread(torch.stack([flat, peak, noisy, 3 * noisy + 7]))
    assert values[0].item() == pytest.approx(1.0) and values[1].item() == pytest.approx(0.0)
    assert values[2].item() == pytest.approx(values[3].item())
    corner = torch.zeros(5, 5)
    corner[:2, :2] = 1.0
    assert 0 < spread(corner).item() < spread(noisy).item()


def test_category_scores_and_the_dissection_iou_of_a_map_on_one_category() -> None:
    instances, union = _two_instances()
    images = [_cells(instances, ("cat", "dog")) for _ in range(3)]
    cat = object_coverage(torch.from_numpy(instances[0]), (4, 4)) + 0.01
    noise = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(2))
    maps = torch.stack([torch.stack([cat, noise[i]]) for i in range(3)])  # 3×2×4×4
    scores = score_patterns(maps, images, ["cat", "dog", "bird"])
    assert scores.categories == ("cat", "dog", "bird")
    assert scores.category_auroc[0, 0] == 1.0 and scores.category_auroc[1, 0] == 0.5
    assert scores.category_vs_others[0, 0] == 1.0 and scores.category_vs_others[1, 0] == 0.0
    assert scores.category_images.tolist() == [3, 3, 0] and math.isnan(scores.category_auroc[2, 0])
    assert scores.selectivity[0] == 1.0 and scores.selectivity_images == 3
    iou = dissection_iou(maps, images, ["cat", "dog"])
    assert iou[0, 0] > 0 and iou[1, 0] == 0  # the top cells of map 0 lie on cats only
    assert iou[0, 0] == pytest.approx(12 / 12)  # its 12 top cells (ties) are exactly the cats' 3 × 4 cells


def test_roles_follow_the_control_thresholds() -> None:
    thresholds = {"on_objects": 0.8, "on_background": 0.4, "selective": 0.7, "spread": 0.9}
    auroc = torch.tensor([0.9, 0.9, 0.9, 0.3, 0.6, 0.6])
    selective = torch.tensor([0.8, 0.6, math.nan, 0.5, 0.5, 0.5])
    spreads = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.95, 0.5])
    roles = assign_patterns(auroc, selective, spreads, thresholds)
    assert roles == ["object", "multi-object", "mixed", "background", "global", "mixed"]
    assert count_patterns(roles) == {"object": 1, "multi-object": 1, "global": 1, "background": 1, "mixed": 2, UNDECIDED: 0}
    controls = [torch.linspace(0, 1, 101)]
    found = pattern_thresholds(controls, controls, controls)
    assert found["on_objects"] == pytest.approx(0.95) and found["on_background"] == pytest.approx(0.05)
    assert found["spread"] == pytest.approx(0.5)


def _pattern_scores(selective: list[float], spreads: list[float], versus: list[list[float]], n: int = 40, seed: int = 0) -> PatternScores:
    """Pattern scores of ``n`` images whose per-image selectivity and spread scatter (sd 0.05) around the given
    per-index values; the means are the per-image values' means, as ``score_patterns`` makes them."""
    d = len(selective)
    g = torch.Generator().manual_seed(seed)
    each = torch.tensor(selective, dtype=torch.float64) + 0.05 * torch.randn(n, d, generator=g, dtype=torch.float64)
    spread_each = torch.tensor(spreads, dtype=torch.float64) + 0.05 * torch.randn(n, d, generator=g, dtype=torch.float64)
    table = torch.tensor(versus, dtype=torch.float64)
    return PatternScores(
        selectivity=each.mean(dim=0), selectivity_images=n, spread=spread_each.mean(dim=0), categories=("cat", "dog"),
        category_auroc=table, category_images=torch.tensor([10, 10]), category_vs_others=table,
        versus_images=torch.tensor([10, 10]), iou=torch.zeros(2, d, dtype=torch.float64),
        selectivity_each=each, spread_each=spread_each,
    )  # fmt: skip


def _per_image(values: torch.Tensor, n: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return values.to(torch.float64) + 0.05 * torch.randn(n, len(values), generator=g, dtype=torch.float64)


def test_controls_get_their_roles_by_the_same_rule_and_preferences_are_measured_on_heldout() -> None:
    generator = torch.Generator().manual_seed(3)
    controls_auroc, controls_patterns = [], []
    for k in range(4):
        a = _per_image(0.5 + 0.1 * torch.rand(8, generator=generator, dtype=torch.float64), seed=k + 1)
        p = _pattern_scores((0.5 + 0.1 * torch.rand(8, generator=generator)).tolist(), [1.0] * 8, (0.5 + 0.05 * torch.rand(2, 8, generator=generator)).tolist(), seed=k + 1)
        controls_auroc.append((a, a))
        controls_patterns.append((p, p))
    model_auroc = _per_image(torch.tensor([0.95, 0.95, 0.3, 0.55, 0.55, 0.55, 0.55, 0.55]), seed=9)
    model = _pattern_scores([0.99, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], [0.2, 0.2, 0.2, 2.0, 0.2, 0.2, 0.2, 0.2],
                            [[0.99] + [0.5] * 7, [0.5] * 8], seed=9)  # fmt: skip
    summary, records = summarize_patterns((model_auroc, model_auroc), (model, model), controls_auroc, controls_patterns, 0)
    assert [r["pattern"] for r in records[:4]] == ["object", "multi-object", "background", "global"]
    assert all(r["pattern_confidence"] >= 0.9 and r["pattern_leaning"] == r["pattern"] for r in records[:4])
    assert summary["patterns"]["object"] == 1 and summary["patterns_heldout_agreement"] == 1.0
    assert summary["patterns_beyond_random"]["object"] == {"count": 1, "family_min": 0, "family_max": 0, "family_mean": 0.0, "beyond": True, "below": False}
    assert summary["patterns_heldout_compared"] == sum(r["pattern"] != UNDECIDED for r in records)
    assert summary["patterns_note"].startswith(f"{summary['patterns_heldout_compared']} of 8 roles decided at 90% confidence")
    assert len(summary["control_patterns"]["each"]) == 4
    assert summary["best_control_patterns"] == summary["control_patterns"]["each"][0]
    assert records[0]["category"] == {"name": "cat", "preference_heldout": 0.99, "significant": True}
    assert summary["dissection"]["preferring_maps"] >= 1 and "cat" in summary["dissection"]["covered"]
    assert summary["dissection"]["line"].startswith(f"{summary['dissection']['preferring_maps']} of 8 maps prefer one category")
    names, _ = preferred_categories(model, model)
    assert names[0] == "cat"


@needs_stamps
def test_a_profile_on_scenes_measures_patterns_next_to_the_controls(tiny_checkpoint: str, tmp_path) -> None:
    profile = build_profile(tiny_checkpoint, data="scenes:8", size=128, batch_size=8, control_seeds=1)
    summary = profile["summary"]
    assert profile["version"] == 4 and has_patterns(profile) and patterns_note(profile) == summary["patterns_note"]
    assert sum(summary["patterns"].values()) == 32 and set(summary["patterns"]) == {*PATTERN_ROLES, UNDECIDED}
    assert sum(summary["random_control"]["patterns"].values()) == 32
    assert len(summary["control_patterns"]["each"]) == 3
    # 8 scenes make 4 calibration images: below the floor, nothing is decided, and the note says why
    assert summary["patterns"][UNDECIDED] == 32 and "no role is decided on fewer than" in summary["patterns_note"]
    for record in profile["maps"]:
        assert record["pattern"] == UNDECIDED and record["heldout_pattern"] == UNDECIDED
        assert record["pattern_leaning"] in PATTERN_ROLES and 0 < record["pattern_confidence"] <= 1
        assert set(record["pattern_scores"]) == {"calibration", "heldout"}
        assert record["pattern_scores"]["heldout"]["object_auroc"] == pytest.approx(record["auroc_heldout"])
        assert len(record["categories"]) <= 5
    for role in (*PATTERN_ROLES, UNDECIDED):
        assert sorted(pattern_indices(profile, role)) == [r["index"] for r in profile["maps"] if r["pattern"] == role]
    categories = profile_categories(profile)
    assert categories and all(isinstance(c, str) and c for c in categories)
    looking = category_indices(profile, categories[0])
    assert all(any(c["name"] == categories[0] for c in profile["maps"][m]["categories"]) for m in looking)
    text = format_profile(profile)
    assert "measured patterns: object 0, within random (up to 0)" in text and "prefer one category" in text
    assert "undecided 32 of 32" in text and "no held-out check" in text
    path = write_profile(profile, tmp_path / "p.profile.json")
    assert read_profile(path)["summary"]["patterns"] == summary["patterns"]


@needs_stamps
def test_without_patterns_and_a_version_2_file_say_why(tiny_checkpoint: str, tmp_path) -> None:
    profile = build_profile(tiny_checkpoint, data="scenes:6", size=128, batch_size=6, control_seeds=1, patterns=False)
    assert not has_patterns(profile) and profile["summary"]["patterns"] is None
    assert patterns_note(profile) == "not measured: turned off (--no-patterns)"
    assert "measured patterns: not measured: turned off" in format_profile(profile)
    old = json.loads(json.dumps(profile))
    old["version"] = 2
    del old["summary"]["patterns"], old["summary"]["patterns_note"]
    path = tmp_path / "old.profile.json"
    path.write_text(json.dumps(old))
    opened = read_profile(path)
    assert not has_patterns(opened) and "version-2 profile" in patterns_note(opened)
    assert pattern_indices(opened, "object") == [] and category_indices(opened, "animals") == []
    old["version"] = 3  # roles cut without confidence: they open, but are not shown as measured
    old["summary"]["patterns"] = {role: 0 for role in PATTERN_ROLES}
    path.write_text(json.dumps(old))
    opened = read_profile(path)
    assert not has_patterns(opened) and "without asking whether the data settle them" in patterns_note(opened)
    old["version"] = 1
    path.write_text(json.dumps(old))
    with pytest.raises(ProfileError, match="reads versions"):
        read_profile(path)


def test_role_counts_are_said_against_the_family() -> None:
    from lewel.maps.profiles.text import role_count

    entry = {"count": 5, "family_min": 0, "family_max": 10, "family_mean": 4.0, "beyond": False, "below": False}
    assert role_count("multi-object", entry) == "multi-object 5, within random (up to 10)"
    assert role_count("object", {**entry, "count": 20, "beyond": True}) == "object 20, beyond random (up to 10)"
    assert role_count("global", {**entry, "count": 24, "family_min": 38, "family_max": 65, "below": True}) == "global 24, below random (38 to 65)"
