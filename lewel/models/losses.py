"""Pure loss functions. No modules, no state: tensors in, a scalar tensor out."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Logits of a row are shifted by the row's bound |q|/T before exp (see ``_StreamedInfoNCE``); the
#: smallest shifted logit is -2|q|/T, and exp underflows float32 below about -87. Above this bound on
#: 1/T (temperatures under 0.025) the dense form with its per-row maximum is used instead.
STREAMED_MAX_INVERSE_TEMPERATURE = 40.0

#: Elements of one chunk of logits (rows × queue keys) in the streamed InfoNCE: 4 MB of float32 on the
#: CPU, where it stays in cache (2^18 to 2^22 elements timed alike at 1,024 × 65,536 logits, 2^24 30 %
#: slower), 256 MB on a GPU (fewer, larger kernels).
CHUNK_ELEMENTS = {"cpu": 1 << 20, "cuda": 1 << 26}


def normalized_mse(prediction: torch.Tensor, target: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """BYOL's regression loss ``2 - 2·cos(prediction, target)`` along ``dim``, averaged over all other axes.

    For ``B×d`` inputs it averages over the batch; for ``B×d×n`` aligned embeddings over all B·n pairs.
    """
    cosine = F.cosine_similarity(prediction.float(), target.float(), dim=dim, eps=1e-12)
    return (2.0 - 2.0 * cosine).mean()


class _StreamedInfoNCE(torch.autograd.Function):
    """InfoNCE of scaled queries against unit keys without the ``N×(1+K)`` logits matrix.

    Inputs: ``query`` ``N×c`` (unit rows already divided by the temperature), ``positive`` ``N×c`` and
    ``negatives`` ``K×c`` (unit rows). Every logit of row i lies in ``[-|q_i|, |q_i|]``, so shifting by
    ``|q_i|`` bounds every exponential by 1 with no pass for a maximum. The queue is walked in chunks
    of ``chunk`` keys: ``E = exp(q·n - |q|)`` (``N×chunk``), ``S += ΣE`` and ``A += E·n``. The loss is
    ``mean(|q| + log(S + e_pos) - q·k)`` and, from the same sums, its gradients
    ``dL/dq = (A/S_total + (p_pos - 1)·k)/N`` and ``dL/dk = (p_pos - 1)·q/N``: they are computed in the
    forward pass (two matrix products per chunk, as the dense form's forward + backward) and only scaled
    in the backward pass, which therefore keeps nothing of the queue (it may change in place before
    ``backward``). Negatives get no gradient (MoCo's queue is a buffer).
    """

    @staticmethod
    def forward(ctx, query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, chunk: int) -> torch.Tensor:
        if ctx.needs_input_grad[2]:
            raise ValueError("the streamed InfoNCE gives no gradient to the negatives (a queue of keys)")
        shift = query.norm(dim=1, keepdim=True)
        positive_logit = (query * positive).sum(dim=1, keepdim=True)
        total = torch.exp(positive_logit - shift)
        want_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        weighted = torch.zeros_like(query) if want_grad else None
        rows = query.shape[0]
        buffer = query.new_empty(rows * min(chunk, negatives.shape[0]))
        for start in range(0, negatives.shape[0], chunk):
            keys = negatives[start : start + chunk]
            exps = buffer[: rows * keys.shape[0]].view(rows, keys.shape[0])
            torch.addmm(-shift, query, keys.T, out=exps)
            exps.exp_()
            total += exps.sum(dim=1, keepdim=True)
            if weighted is not None:
                weighted += exps @ keys  # not addmm_: FlopCounterMode does not count the in-place form
        loss = (shift + total.log() - positive_logit).mean()
        if want_grad:
            positive_weight = torch.exp(positive_logit - shift) / total - 1.0
            ctx.save_for_backward(
                (weighted / total + positive_weight * positive) / rows, positive_weight * query / rows
            )
        return loss.reshape(())

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_query, grad_positive = ctx.saved_tensors
        return grad_loss * grad_query, grad_loss * grad_positive, None, None


def info_nce(
    query: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float,
    *,
    unit_negatives: bool = False,
    chunk_elements: int | None = None,
) -> torch.Tensor:
    """MoCo's InfoNCE: ``query`` and ``positive`` are ``N×c``, ``negatives`` is ``K×c``.

    All are L2-normalised here (``unit_negatives``: the negatives already are, e.g. MoCo's queue, and
    are not copied). Each query's logits are its positive followed by the K negatives, divided
    by ``temperature``; the loss is the cross-entropy with the positive as the class, averaged over N.
    It is computed in float32, streamed over the negatives (``_StreamedInfoNCE``: peak memory
    ``chunk_elements`` logits instead of ``N×(1+K)``, the temperature folded into the queries), and equal
    to the dense cross-entropy to float tolerance; negatives get no gradient.
    """
    with torch.autocast(query.device.type, enabled=False):
        query = F.normalize(query.float(), dim=1) / temperature
        positive = F.normalize(positive.float(), dim=1)
        negatives = negatives.detach().float()
        if not unit_negatives:
            negatives = F.normalize(negatives, dim=1)
        if 1.0 / temperature > STREAMED_MAX_INVERSE_TEMPERATURE:
            logits = torch.cat([(query * positive).sum(dim=1, keepdim=True), query @ negatives.T], dim=1)
            return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()
        elements = chunk_elements or CHUNK_ELEMENTS.get(query.device.type, CHUNK_ELEMENTS["cuda"])
        chunk = max(1, elements // max(1, query.shape[0]))
        return _StreamedInfoNCE.apply(query, positive, negatives, chunk)


def in_batch_info_nce(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE where query i's positive is key i and its negatives are all other keys (``N×c`` each)."""
    query = F.normalize(query.float(), dim=1)
    keys = F.normalize(keys.float(), dim=1)
    labels = torch.arange(query.shape[0], device=query.device)
    return F.cross_entropy(query @ keys.T / temperature, labels)


def weighted_sum(global_loss: torch.Tensor, aligned_loss: torch.Tensor, weight: float) -> torch.Tensor:
    """LEWEL's combination ``w·L_global + (1 - w)·L_aligned``."""
    return weight * global_loss + (1.0 - weight) * aligned_loss
