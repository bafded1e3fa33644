"""Small helpers that do the right thing with and without ``torch.distributed``."""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@torch.no_grad()
def gather_all(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (``N×...``, same N on every rank) from all ranks along dim 0; no gradient.

    Without a process group it returns ``tensor`` itself.
    """
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


@torch.no_grad()
def shuffle_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """MoCo's shuffling BatchNorm: give this rank a random slice of the global batch.

    Returns the local shuffled images and the permutation needed by ``unshuffle_batch``; in a single
    process nothing is shuffled (BatchNorm statistics cannot leak across devices there) and the
    permutation is ``None``.
    """
    if not is_distributed():
        return images, None
    all_images = gather_all(images)
    permutation = torch.randperm(all_images.shape[0], device=images.device)
    dist.broadcast(permutation, src=0)
    local = all_images.shape[0] // dist.get_world_size()
    rank = dist.get_rank()
    return all_images[permutation[rank * local : (rank + 1) * local]], permutation


@torch.no_grad()
def unshuffle_batch(outputs: torch.Tensor, permutation: torch.Tensor | None) -> torch.Tensor:
    """Undo ``shuffle_batch`` on per-sample outputs ``N×...`` computed from the shuffled images."""
    if permutation is None:
        return outputs
    all_outputs = gather_all(outputs)
    inverse = torch.argsort(permutation)
    local = all_outputs.shape[0] // dist.get_world_size()
    rank = dist.get_rank()
    return all_outputs[inverse[rank * local : (rank + 1) * local]]
