"""Each loss against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lewel.models.losses import _StreamedInfoNCE, in_batch_info_nce, info_nce, normalized_mse, weighted_sum


def test_normalized_mse_hand_values():
    prediction = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    target = torch.tensor([[0.0, 3.0], [2.0, 2.0]])
    # pair 1: orthogonal -> 2 - 0 = 2; pair 2: parallel -> 0. Mean = 1.
    assert normalized_mse(prediction, target).item() == 1.0
    # opposite vectors give the maximum, 4
    assert normalized_mse(torch.tensor([[1.0, 0.0]]), torch.tensor([[-5.0, 0.0]])).item() == 4.0


def test_normalized_mse_averages_over_aligned_positions():
    prediction = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])  # 1×d=2×n=2: position 0 = (1,0), position 1 = (1,1)
    target = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # position 0 = (1,0), position 1 = (0,1)
    cos1 = 1 / math.sqrt(2)
    expected = ((2 - 2 * 1.0) + (2 - 2 * cos1)) / 2
    assert math.isclose(normalized_mse(prediction, target).item(), expected, rel_tol=1e-6)


def test_info_nce_hand_values():
    query = torch.tensor([[1.0, 0.0]])
    positive = torch.tensor([[2.0, 0.0]])  # cos 1
    negatives = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])  # cos 0 and -1
    temperature = 0.5
    logits = torch.tensor([1.0, 0.0, -1.0]) / temperature
    expected = -logits[0] + torch.logsumexp(logits, 0)
    assert math.isclose(info_nce(query, positive, negatives, temperature).item(), expected.item(), rel_tol=1e-6)


def test_in_batch_info_nce_hand_values():
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    keys = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    temperature = 1.0
    c = 1 / math.sqrt(2)
    row0 = -1.0 + math.log(math.exp(1.0) + math.exp(c))
    row1 = -c + math.log(math.exp(0.0) + math.exp(c))
    assert math.isclose(in_batch_info_nce(query, keys, temperature).item(), (row0 + row1) / 2, rel_tol=1e-6)


def test_weighted_sum():
    assert weighted_sum(torch.tensor(2.0), torch.tensor(4.0), 0.25).item() == 0.25 * 2 + 0.75 * 4


def dense_info_nce(query, positive, negatives, temperature):
    """The definition: the full logits matrix, then the cross-entropy (the streamed form's reference)."""
    query = F.normalize(query.double(), dim=1)
    positive = F.normalize(positive.double(), dim=1)
    negatives = F.normalize(negatives.double(), dim=1)
    logits = torch.cat([(query * positive).sum(dim=1, keepdim=True), query @ negatives.T], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(query.shape[0], dtype=torch.long))


@pytest.mark.parametrize("chunk_elements", [None, 7 * 37, 1])  # one chunk, a ragged last chunk, one key a chunk
@pytest.mark.parametrize("temperature", [0.2, 0.07, 1.0])
def test_streamed_info_nce_matches_dense_loss_and_gradients(chunk_elements, temperature):
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(37, 16, generator=generator, requires_grad=True)
    positive = (query.detach() + 0.5 * torch.randn(37, 16, generator=generator)).requires_grad_()
    negatives = F.normalize(torch.randn(300, 16, generator=generator), dim=1)
    loss = info_nce(query, positive, negatives, temperature, unit_negatives=True, chunk_elements=chunk_elements)
    grads = torch.autograd.grad(3.0 * loss, (query, positive))
    reference = dense_info_nce(query, positive, negatives, temperature)
    expected = torch.autograd.grad(3.0 * reference, (query, positive))
    assert loss.dtype == torch.float32 and loss.shape == ()
    assert torch.allclose(loss.double(), reference, rtol=1e-5, atol=1e-6)
    for got, want in zip(grads, expected):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-7)


def test_streamed_info_nce_gradcheck_in_double():
    generator = torch.Generator().manual_seed(1)
    query = (F.normalize(torch.randn(5, 4, generator=generator, dtype=torch.float64), dim=1) / 0.3).requires_grad_()
    positive = F.normalize(torch.randn(5, 4, generator=generator, dtype=torch.float64), dim=1).requires_grad_()
    negatives = F.normalize(torch.randn(11, 4, generator=generator, dtype=torch.float64), dim=1)
    assert torch.autograd.gradcheck(lambda q, k: _StreamedInfoNCE.apply(q, k, negatives, 3), (query, positive))


def test_streamed_info_nce_keeps_nothing_of_the_queue():
    """MoCo pushes keys into its queue between the loss and backward: the loss must not depend on it then."""
    query = torch.randn(8, 6, requires_grad=True)
    queue = F.normalize(torch.randn(40, 6), dim=1)
    before = torch.autograd.grad(info_nce(query, torch.ones(8, 6), queue, 0.2, unit_negatives=True), query)[0]
    loss_again = info_nce(query, torch.ones(8, 6), queue, 0.2, unit_negatives=True)
    queue.copy_(F.normalize(torch.randn(40, 6), dim=1))  # the push, in place, before backward
    (after,) = torch.autograd.grad(loss_again, query)
    assert torch.equal(before, after)


def test_streamed_info_nce_without_gradients_and_under_autocast():
    generator = torch.Generator().manual_seed(2)
    query, positive = torch.randn(10, 8, generator=generator), torch.randn(10, 8, generator=generator)
    negatives = torch.randn(50, 8, generator=generator)
    reference = dense_info_nce(query, positive, negatives, 0.2)
    with torch.no_grad():
        assert torch.allclose(info_nce(query, positive, negatives, 0.2).double(), reference, rtol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = info_nce(query.bfloat16(), positive.bfloat16(), negatives, 0.2)
    assert loss.dtype == torch.float32
    assert torch.allclose(loss.double(), dense_info_nce(query.bfloat16(), positive.bfloat16(), negatives, 0.2), rtol=1e-5)


def test_info_nce_at_a_tiny_temperature_is_finite_and_exact():
    """Below temperature 0.025 the shifted exponentials could underflow; the dense form takes over."""
    generator = torch.Generator().manual_seed(3)
    query = torch.randn(6, 8, generator=generator, requires_grad=True)
    positive, negatives = -query.detach(), torch.randn(30, 8, generator=generator)  # the positive is the worst key
    loss = info_nce(query, positive, negatives, 0.01)
    assert torch.isfinite(loss)
    assert torch.allclose(loss.double(), dense_info_nce(query, positive, negatives, 0.01), rtol=1e-5)


def test_streamed_info_nce_refuses_gradients_for_the_negatives():
    negatives = F.normalize(torch.randn(5, 3), dim=1).requires_grad_()
    with pytest.raises(ValueError, match="negatives"):
        _StreamedInfoNCE.apply(torch.randn(2, 3, requires_grad=True), torch.randn(2, 3), negatives, 2)
