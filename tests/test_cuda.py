"""The CUDA paths: bf16 autocast training steps, channels_last, torch.compile, extraction and /v1/maps on a GPU.

Every test here is marked ``cuda`` and skips without a GPU; ``benchmarks/gpu_check.py`` runs them
(``pytest -m cuda``) when one is lent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest
import torch

from conftest import tiny_config
from lewel.models import build_model
from lewel.models.backbones import ResNetEncoder
from lewel.train.optim import build_optimizer

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture
def exact_fp32() -> Iterator[None]:
    """TF32 off for the duration of a test, so that fp32 on the GPU is compared with fp32 on the CPU."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def views(batch: int = 8, size: int = 64, *, channels_last: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Two random GPU batches of ``size`` px, channels_last by default (what the training loop feeds)."""
    generator = torch.Generator().manual_seed(1)
    pair = [torch.randn(batch, 3, size, size, generator=generator).cuda() for _ in range(2)]
    if channels_last:
        pair = [v.contiguous(memory_format=torch.channels_last) for v in pair]
    return pair[0], pair[1]


@pytest.mark.parametrize("method", ["lewel_b_eman", "lewel_m"])
def test_bf16_autocast_training_step_is_finite_and_moves_both_networks(exact_fp32, method):
    model = build_model(tiny_config(method)).cuda().to(memory_format=torch.channels_last).train()
    view1, view2 = views()
    with torch.no_grad():
        reference = copy.deepcopy(model)(view1, view2).loss.item()
    optimizer = build_optimizer(model, "sgd", 0.05, 1e-4)
    before = {name: p.detach().clone() for name, p in model.state_dict().items() if p.is_floating_point()}
    with torch.autocast("cuda", dtype=torch.bfloat16):
        output = model(view1, view2)
    assert output.loss.dtype == torch.float32 and torch.isfinite(output.loss)
    assert output.loss.item() == pytest.approx(reference, rel=0.1, abs=0.05)  # bf16 stays close to fp32
    assert output.loss_aligned is not None and torch.isfinite(output.loss_aligned)
    optimizer.zero_grad(set_to_none=True)
    output.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    optimizer.step()
    moved = [name for name, value in before.items() if not torch.equal(value, model.state_dict()[name])]
    assert any(".backbone." in name for name in moved)
    targets = [target for _, target in model.momentum_pairs()]
    target_before = [[p.detach().clone() for p in target.parameters()] for target in targets]
    model.update_target(0.9)
    for target, previous in zip(targets, target_before):
        now = list(target.parameters())
        assert all(torch.isfinite(p).all() for p in now)
        assert any(not torch.equal(p, q) for p, q in zip(now, previous)), "update_target left the target unchanged"


def test_channels_last_gives_the_features_of_the_default_layout(exact_fp32):
    encoder = ResNetEncoder("resnet18").cuda().eval()
    images, _ = views(4, 96, channels_last=False)
    with torch.no_grad():
        expected = encoder(images)
        encoder = encoder.to(memory_format=torch.channels_last)
        assert encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        features = encoder(images.contiguous(memory_format=torch.channels_last))
    assert features.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(features, expected, atol=1e-4, rtol=1e-4)


def test_training_loop_memory_format_is_channels_last_on_the_gpu():
    from lewel.train.config import TrainConfig
    from lewel.train.loop import Runtime, _memory_format

    gpu = Runtime(0, 1, torch.device("cuda"))
    assert _memory_format(TrainConfig(), gpu) == torch.channels_last
    assert _memory_format(TrainConfig(channels_last=False), gpu) == torch.contiguous_format


def test_compiled_backbone_matches_eager_forward_and_backward(exact_fp32):
    eager = ResNetEncoder("resnet18").cuda().train()
    compiled = copy.deepcopy(eager)
    compiled.compile()
    images, _ = views(4, 64)
    out_eager, out_compiled = eager(images), compiled(images)
    torch.testing.assert_close(out_compiled, out_eager, atol=1e-3, rtol=1e-3)
    out_eager.square().mean().backward()
    out_compiled.square().mean().backward()
    torch.testing.assert_close(compiled.conv1.weight.grad, eager.conv1.weight.grad, atol=1e-3, rtol=1e-2)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, object]:
    """A LEWEL_B training file and a LEWEL_M safetensors export (tiny heads)."""
    from checkpoint_factory import our_training_file

    from lewel.export import export_safetensors
    from lewel.inference import load_model

    folder = tmp_path_factory.mktemp("cuda_models")
    our_training_file(folder / "b.pt", tiny_config("lewel_b"))
    our_training_file(folder / "m_training.pt", tiny_config("lewel_m"))
    return {"lewel_b": folder / "b.pt", "lewel_m": export_safetensors(load_model(folder / "m_training.pt"), folder / "m.safetensors")}


@pytest.mark.parametrize("method", ["lewel_b", "lewel_m"])
def test_extraction_on_cuda_equals_cpu(exact_fp32, checkpoints, method):
    from lewel.inference import load_model

    images = torch.randn(3, 3, 96, 96)
    cpu = load_model(checkpoints[method]).extract(images)
    gpu_model = load_model(checkpoints[method], map_location="cuda")
    gpu = gpu_model.extract(images.cuda())
    assert gpu.maps.device.type == "cuda"
    for name in ("global_embedding", "maps", "aligned_features", "aligned_embeddings"):
        torch.testing.assert_close(getattr(gpu, name).cpu(), getattr(cpu, name), atol=2e-4, rtol=1e-3, msg=name)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        half = gpu_model.to(memory_format=torch.channels_last).extract(images.cuda().contiguous(memory_format=torch.channels_last))
    assert torch.isfinite(half.maps.float()).all()
    similarity = torch.nn.functional.cosine_similarity(half.global_embedding.float().cpu(), cpu.global_embedding, dim=1)
    assert similarity.min() > 0.98
    assert (half.maps.float().cpu() - cpu.maps).abs().mean() < 0.05 * cpu.maps.abs().mean() + 1e-3


@pytest.mark.parametrize("amp", ["auto", "fp16"])
def test_training_loop_runs_on_the_gpu(tmp_path, amp):
    from image_factory import make_image_folder

    from lewel.files.checkpoints import safe_load
    from lewel.inference import load_model
    from lewel.train.config import TrainConfig
    from lewel.train.loop import train

    data = make_image_folder(tmp_path / "images", per_class=8)
    config = TrainConfig.for_method(
        "lewel_m", model=tiny_config("lewel_m"), data=str(data), out=str(tmp_path / "run"), image_size=32,
        batch_size=8, epochs=1, workers=0, log_every=1, warmup_epochs=0.0, amp=amp,
    )
    summary = train(config)
    assert summary["steps"] == 2 and summary["loss"] == summary["loss"]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records if "loss" in r)
    state = safe_load(tmp_path / "run" / "last.pt")
    assert (state["scaler"]["scale"] > 0) if amp == "fp16" else state["scaler"] == {}
    assert load_model(tmp_path / "run" / "last.pt").has_maps


def test_v1_maps_is_served_from_the_gpu_and_matches_the_cpu(exact_fp32, tmp_path):
    import numpy as np
    from api_factory import build_models, image_bytes, wait_ready
    from fastapi.testclient import TestClient

    from api.encoding import decode_array
    from api.main import create_app
    from api.settings import Settings
    from lewel.files.images import decode_image
    from lewel.inference import load_model
    from lewel.views import original_view, views_batch

    models = build_models(tmp_path / "models")
    settings = Settings(
        models_dir=models["tiny"].parent, bundled_models_dir=tmp_path / "none", warmup_size=64,
        default_model="tiny", device="cuda",
    )
    data = image_bytes(seed=5)
    with TestClient(create_app(settings)) as client:
        assert wait_ready(client)["device"].startswith("cuda")
        response = client.post("/v1/maps", files={"image": ("image.png", data, "image/png")}, data={"size": "64"})
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["model"]["device"].startswith("cuda")
    expected = load_model(models["tiny"]).extract(views_batch([original_view(decode_image(data), 64)])).maps[0]
    np.testing.assert_allclose(decode_array(body["views"][0]["maps"]), expected.numpy(), atol=2e-3)


def test_streamed_info_nce_on_the_gpu_equals_the_cpu_at_a_bounded_peak(exact_fp32):
    """The aligned InfoNCE on cuda under bf16 autocast (inside it runs in fp32): the CPU's loss and gradient,
    with a peak far below the dense logits matrix (4,096 × 65,537 floats = 1 GiB)."""
    from lewel.models.losses import info_nce

    generator = torch.Generator().manual_seed(0)
    query = torch.randn(4096, 128, generator=generator)
    positive = torch.randn(4096, 128, generator=generator)
    negatives = torch.nn.functional.normalize(torch.randn(65536, 128, generator=generator), dim=1)
    cpu_query = query.clone().requires_grad_()
    cpu_loss = info_nce(cpu_query, positive, negatives, 0.2, unit_negatives=True)
    cpu_loss.backward()
    gpu_query = query.cuda().requires_grad_()
    gpu_negatives = negatives.cuda()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        gpu_loss = info_nce(gpu_query, positive.cuda(), gpu_negatives, 0.2, unit_negatives=True)
    gpu_loss.backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    assert gpu_loss.dtype == torch.float32
    torch.testing.assert_close(gpu_loss.cpu(), cpu_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gpu_query.grad.cpu(), cpu_query.grad, rtol=1e-4, atol=1e-7)
    assert peak < 400 * 2**20  # one 256 MiB chunk and a few N×c tensors
