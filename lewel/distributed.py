"""The processes of a run: joining the process group that ``torchrun`` describes (training and map extraction
share it), and small helpers that do the right thing with and without ``torch.distributed``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: rank, world size, default device, and whether it joined (created) the process
    group itself, in which case ``leave`` ends it."""

    rank: int
    world_size: int
    device: torch.device = torch.device("cpu")
    joined: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait until every process gets here (nothing to wait for alone)."""
        if self.distributed:
            dist.barrier()

    def leave(self) -> None:
        """End the process group this process joined (nothing when it ran alone or found the group made)."""
        if self.joined and dist.is_initialized():
            dist.destroy_process_group()


def join_processes(backend: str | None = None, *, timeout: timedelta | None = None) -> Runtime:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1), or run alone.

    ``backend``: ``None`` for nccl on GPU and gloo on the CPU (training: the group carries the gradients; with
    nccl this process's GPU is ``cuda:LOCAL_RANK``, made the current one), or e.g. ``"gloo"`` whatever the
    device, for a group that only synchronises the ranks (map extraction). ``timeout``: how long a collective
    waits (``None``: torch's default). The device is ``cuda:LOCAL_RANK`` (alone: ``cuda``) when CUDA is
    available, else the CPU. A group made before is used as it is, and left to its maker to end.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world_size <= 1:
        return Runtime(0, 1, torch.device("cuda" if cuda else "cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    backend = backend or ("nccl" if cuda else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if dist.is_initialized():
        return Runtime(dist.get_rank(), dist.get_world_size(), device)
    if timeout is None:
        dist.init_process_group(backend)
    else:
        dist.init_process_group(backend, timeout=timeout)
    return Runtime(dist.get_rank(), world_size, device, joined=True)


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
