"""The notebooks in notebooks/: each runs top to bottom in a fresh kernel (nbclient) from a temporary working
copy within a per-notebook time limit, prints its summary line with sane numbers and draws its figures; the
committed files carry no outputs; the root-finding cell works with and without ``LEWEL_ROOT``. The map-profile
numbers the notebooks print (held-out AUROC of the object maps and of the random control) must be those of the
shipped sidecars ``models/NAME.profile.json``, and LEWEL_M's object maps must beat its random control."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from lewel.data import STAMPS_DIR

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_TIMEOUT_S = 300  #: wall-clock limit per notebook; each runs in under a minute on 2 quiet CPU cores
KERNEL_STARTUP_TIMEOUT_S = 120
KERNEL_NAME = "lewel-notebook-test"
CHECKPOINT_LINE = "CHECKPOINT = None  # set to the path of an authors' LEWEL_B file, e.g. lewelb_eman_200ep.pth.tar"

NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
VALUE = r"([0-9]+(?:\.[0-9]+)?|n/a)"  #: a number, or n/a where it is not known (no profile, no scenes)
VERDICT = r"(localises|not better than random|no profile)"
SUMMARIES = {
    "01_figure5.ipynb": re.compile(
        rf"Figure 5 summary \(([^)]+)\): (\d+) figures, (\d+) images x (\d+) views; maps shown (\d+) object \+ "
        rf"(\d+) background \(profile\), (\d+) heuristic; object maps AUROC {VALUE} held-out \(random control "
        rf"{VALUE}, {VERDICT}\), {VALUE} on (\d+) generated scenes; peak ratio of the shown maps {NUMBER} to "
        rf"{NUMBER}; mean cross-view agreement {NUMBER}"
    ),
    "02_map_statistics.ipynb": re.compile(
        rf"summary (LEWEL_[BM]): object maps AUROC {NUMBER} held-out \(random control {NUMBER}, {VERDICT}\), "
        rf"{VALUE} on (\d+) scenes here; normalized entropy mean {NUMBER} \(min {NUMBER}\); heuristic patterns "
        rf"object {NUMBER} % / multi-object {NUMBER} % / global {NUMBER} % over (\d+) images x (\d+) maps"
    ),
    "03_cross_view_alignment.ipynb": re.compile(
        rf"cross-view agreement, same map index: demo {NUMBER} ± {NUMBER} \(n = (\d+)\), random {NUMBER} ± {NUMBER} "
        rf"\(n = (\d+)\); mismatched index: demo {NUMBER} ± {NUMBER}, random {NUMBER} ± {NUMBER}; "
        rf"relative disagreement: demo {NUMBER}, random {NUMBER}; same index by role: demo object maps {NUMBER} ± "
        rf"{NUMBER}, other maps {NUMBER} ± {NUMBER}, random object maps {NUMBER} ± {NUMBER}, other maps {NUMBER} ± "
        rf"{NUMBER}; relative disagreement of the object maps: demo {NUMBER}, random {NUMBER}; demo profile: object "
        rf"maps AUROC {NUMBER} held-out \(random control {NUMBER}, {VERDICT}\)"
    ),
}
N_OBJECT, N_BACKGROUND = 4, 1  #: notebook 01 shows this many object and background maps of a profile per image


def shipped_profile(name: str) -> tuple[float, float, str]:
    """(held-out AUROC of the object maps, the random control's, verdict) of models/NAME.profile.json, rounded
    as the notebooks print them."""
    summary = json.loads((ROOT / "models" / f"{name}.profile.json").read_text())["summary"]
    return round(summary["object_auroc"], 3), round(summary["random_control"]["object_auroc"], 3), summary["verdict"]


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A kernel spec that starts ipykernel with this interpreter (the project's virtual environment), whatever
    other ``python3`` kernels the machine has registered."""
    folder = tmp_path_factory.mktemp("kernels")
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "LEWEL notebook test",
        "language": "python",
    }
    (folder / KERNEL_NAME).mkdir()
    (folder / KERNEL_NAME / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(folder)], ensure_native_kernel=False)


def _deadline(seconds: float) -> Callable[[nbformat.NotebookNode], int]:
    """A ``timeout_func`` for nbclient: each cell gets what is left of ``seconds`` counted from now, so the
    whole notebook (not each cell) is held to the limit."""
    end = time.monotonic() + seconds

    def remaining(cell: nbformat.NotebookNode) -> int:
        return max(1, math.ceil(end - time.monotonic()))

    return remaining


def execute(
    name: str,
    workdir: Path,
    kernel_specs: KernelSpecManager,
    edit: Callable[[nbformat.NotebookNode], None] | None = None,
) -> tuple[nbformat.NotebookNode, float]:
    """Copy notebook ``name`` into ``workdir``, run it there (cwd = ``workdir``) and return the executed
    notebook (also written back into ``workdir`` for inspection) and its wall time in seconds. A cell that
    raises fails with nbclient's ``CellExecutionError``; running past the limit with ``CellTimeoutError``."""
    copy = workdir / name
    shutil.copy(NOTEBOOKS / name, copy)
    notebook = nbformat.read(copy, as_version=4)
    if edit is not None:
        edit(notebook)
    manager = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_specs)
    client = NotebookClient(
        notebook,
        km=manager,
        timeout_func=_deadline(NOTEBOOK_TIMEOUT_S),
        startup_timeout=KERNEL_STARTUP_TIMEOUT_S,
        resources={"metadata": {"path": str(workdir)}},
    )
    started = time.monotonic()
    # importing streamlit (the app's tests) sets MPLBACKEND=Agg in this process; the kernel must keep its
    # inline backend, or plt.show() draws nothing
    client.execute(env={key: value for key, value in os.environ.items() if key != "MPLBACKEND"})
    elapsed = time.monotonic() - started
    nbformat.write(notebook, copy)
    return notebook, elapsed


def stdout_of(cell: nbformat.NotebookNode) -> str:
    return "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")


def png_count(notebook: nbformat.NotebookNode) -> int:
    """How many PNG images the executed notebook displayed."""
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def last_code_cell(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return [cell for cell in notebook.cells if cell.cell_type == "code"][-1]


def all_stdout(notebook: nbformat.NotebookNode) -> str:
    return "".join(stdout_of(cell) for cell in notebook.cells if cell.cell_type == "code")


QUOTED_NUMBER = re.compile(r"(?<![\d.])\d+\.\d{3,}(?![\d])")  #: a number with 3+ decimals, as the prose quotes printed values


def numbers_not_printed(notebook: nbformat.NotebookNode) -> list[str]:
    """The numbers with three or more decimals that the notebook's prose quotes but none of its outputs
    prints: stale prose, once the shipped models or the code changed. Only checked where the scenes exist
    (without the Tux Paint cut-outs the notebooks run on photos alone and print other numbers)."""
    printed = all_stdout(notebook)
    quoted = {n for cell in notebook.cells if cell.cell_type == "markdown" for n in QUOTED_NUMBER.findall(cell.source)}
    return sorted(n for n in quoted if n not in printed)


def check_prose(notebook: nbformat.NotebookNode) -> None:
    if STAMPS_DIR.is_dir():
        assert numbers_not_printed(notebook) == [], "the prose quotes numbers the notebook no longer prints"


@pytest.fixture
def lewel_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel inherits the environment: point the notebooks at this checkout."""
    monkeypatch.setenv("LEWEL_ROOT", str(ROOT))


def test_every_notebook_is_tested() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(SUMMARIES)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_committed_notebooks_have_no_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells
    for index, cell in enumerate(code_cells):
        assert cell.outputs == [], f"{path.name}: code cell {index} is stored with outputs"
        assert cell.execution_count is None, f"{path.name}: code cell {index} is stored with an execution count"
        assert "execution" not in cell.metadata, f"{path.name}: code cell {index} is stored with execution timings"


def test_the_checkpoint_cell_is_marked() -> None:
    notebook = nbformat.read(NOTEBOOKS / "01_figure5.ipynb", as_version=4)
    assert sum(CHECKPOINT_LINE in cell.source.splitlines() for cell in notebook.cells if cell.cell_type == "code") == 1


def _setup_cell(name: str) -> str:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    return next(cell.source for cell in notebook.cells if cell.cell_type == "code" and "def find_root" in cell.source)


@pytest.mark.parametrize("name", sorted(SUMMARIES))
def test_setup_cell_finds_the_repository(name: str, tmp_path: Path) -> None:
    """From notebooks/ the root is found upward; from an unrelated folder only through LEWEL_ROOT."""
    source = _setup_cell(name)
    environment = {k: v for k, v in os.environ.items() if k != "LEWEL_ROOT"}

    def run(cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", source]
        env = {**environment, **extra}
        return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)

    upward = run(NOTEBOOKS)
    assert upward.returncode == 0, upward.stderr
    assert upward.stdout.strip() == f"repository root: {ROOT}"
    given = run(tmp_path, LEWEL_ROOT=str(ROOT))
    assert given.returncode == 0, given.stderr
    assert given.stdout.strip() == f"repository root: {ROOT}"
    lost = run(tmp_path)
    assert lost.returncode != 0 and "set LEWEL_ROOT" in lost.stderr


def test_figure5_notebook(tmp_path: Path, kernel_specs: KernelSpecManager, lewel_root: None) -> None:
    notebook, elapsed = execute("01_figure5.ipynb", tmp_path, kernel_specs)
    lines = SUMMARIES["01_figure5.ipynb"].findall(stdout_of(last_code_cell(notebook)))
    assert len(lines) == 1, stdout_of(last_code_cell(notebook))
    name, figures, images, views, objects, backgrounds, heuristic, heldout, control, verdict, here, scenes, low, high, agreement = lines[0]
    figures, images, views, scenes = int(figures), int(images), int(views), int(scenes)
    assert name == "LEWEL_M demo" and views == 3 and images >= 2
    assert figures == 2 * images and png_count(notebook) == figures
    # the profile's maps, in every figure, none chosen by the heuristic
    assert (int(objects), int(backgrounds), int(heuristic)) == (N_OBJECT * images, N_BACKGROUND * images, 0)
    assert (float(heldout), float(control), verdict) == shipped_profile("lewel_m_demo")
    assert float(heldout) > float(control) and verdict == "localises"
    if scenes:  # the scenes are seeded: the shown object maps sit on the objects of these images too
        assert 0.5 < float(here) <= 1.0
    else:
        assert here == "n/a"
    assert 1.0 <= float(low) <= float(high) <= 49.0
    assert 0.5 < float(agreement) <= 1.0
    text = all_stdout(notebook)
    records = json.loads((ROOT / "models" / "lewel_m_demo.profile.json").read_text())["maps"]
    best = max((r for r in records if r["role"] == "object"), key=lambda r: r["auroc_heldout"])
    assert "7×7 maps" in text and f"held-out {best['auroc_heldout']:.3f}" in text  # the best object map, titled with its AUROC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01_figure5.ipynb"], "the notebook wrote files"
    check_prose(notebook)
    assert elapsed < NOTEBOOK_TIMEOUT_S


def test_figure5_notebook_with_an_authors_checkpoint(
    tmp_path: Path, kernel_specs: KernelSpecManager, lewel_root: None, official_file: tuple[Path, dict]
) -> None:
    """The marked cell takes an authors' LEWEL_B file (here one synthesised from the official manifest); it has
    no sidecar profile, so the notebook says so and shows the heuristic selection, labelled as such."""
    path, _ = official_file

    def use_checkpoint(notebook: nbformat.NotebookNode) -> None:
        for cell in notebook.cells:
            if CHECKPOINT_LINE in cell.source:
                cell.source = cell.source.replace(CHECKPOINT_LINE, f"CHECKPOINT = {str(path)!r}")
                cell.source = cell.source.replace("SHOW_DEMO = True", "SHOW_DEMO = False")

    notebook, _ = execute("01_figure5.ipynb", tmp_path, kernel_specs, edit=use_checkpoint)
    text = all_stdout(notebook)
    assert f"{path.name}: lewel_b_eman, resnet50, d = 256 maps in h = 4 channel groups" in text
    assert "LEWEL_M demo" not in text and "7×7 maps" in text
    assert "no map profile (lewelb_eman_200ep.profile.json not found)" in text and "(heuristic " in text
    lines = SUMMARIES["01_figure5.ipynb"].findall(stdout_of(last_code_cell(notebook)))
    assert len(lines) == 1 and lines[0][0] == path.name
    figures, objects, backgrounds, heuristic = int(lines[0][1]), int(lines[0][4]), int(lines[0][5]), int(lines[0][6])
    assert (objects, backgrounds) == (0, 0) and heuristic > 0
    assert lines[0][7:10] == ("n/a", "n/a", "no profile")
    assert png_count(notebook) == figures > 0


def test_map_statistics_notebook(tmp_path: Path, kernel_specs: KernelSpecManager, lewel_root: None) -> None:
    notebook, elapsed = execute("02_map_statistics.ipynb", tmp_path, kernel_specs)
    lines = SUMMARIES["02_map_statistics.ipynb"].findall(stdout_of(last_code_cell(notebook)))
    assert [line[0] for line in lines] == ["LEWEL_B", "LEWEL_M"], stdout_of(last_code_cell(notebook))
    found = {}
    for name, heldout, control, verdict, here, scenes, mean, minimum, object_share, multi_share, global_share, images, maps in lines:
        assert (float(heldout), float(control), verdict) == shipped_profile(f"{name.lower()}_demo")
        assert 0.0 < float(minimum) <= float(mean) <= 1.0
        assert float(object_share) + float(multi_share) + float(global_share) == pytest.approx(100.0, abs=0.2)
        assert int(images) >= 4 and int(maps) == 128
        assert (here == "n/a") == (int(scenes) == 0)
        found[name] = (float(heldout), float(control), verdict, here)
    heldout, control, verdict, here = found["LEWEL_M"]
    assert heldout > control and verdict == "localises"
    if here != "n/a":  # seeded validation scenes, used neither by the training nor by the profile
        assert float(here) > 0.5
    assert png_count(notebook) >= 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["02_map_statistics.ipynb"], "the notebook wrote files"
    check_prose(notebook)
    assert elapsed < NOTEBOOK_TIMEOUT_S


def test_cross_view_alignment_notebook(tmp_path: Path, kernel_specs: KernelSpecManager, lewel_root: None) -> None:
    notebook, elapsed = execute("03_cross_view_alignment.ipynb", tmp_path, kernel_specs)
    match = SUMMARIES["03_cross_view_alignment.ipynb"].search(stdout_of(last_code_cell(notebook)))
    assert match, stdout_of(last_code_cell(notebook))
    demo_units, random_units = int(match.group(3)), int(match.group(6))
    assert demo_units >= 12 and random_units == 2 * demo_units
    agreements = [float(match.group(i)) for i in (1, 2, 4, 5, 7, 8, 9, 10, *range(13, 21))]
    assert all(0.0 <= score <= 1.0 for score in agreements)
    relative = [float(match.group(i)) for i in (11, 12, 21, 22)]
    assert all(score > 0.0 for score in relative)
    heldout, control, verdict = float(match.group(23)), float(match.group(24)), match.group(25)
    assert (heldout, control, verdict) == shipped_profile("lewel_m_demo")
    assert heldout > control and verdict == "localises"
    text = all_stdout(notebook)
    assert "by profile role" in text and "object maps chosen on" in text
    assert png_count(notebook) >= 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["03_cross_view_alignment.ipynb"], "the notebook wrote files"
    check_prose(notebook)
    assert elapsed < NOTEBOOK_TIMEOUT_S
