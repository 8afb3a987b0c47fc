"""RealDraws: the one way a training step (and every harness replaying one) draws its real frames."""

from __future__ import annotations

import torch

from echolib.data.frames import FrameDataset
from echolib.images import to_float
from echolib.train.real_batches import RealDraws


def frames_numbered(n: int = 12, size: int = 8) -> torch.Tensor:
    """uint8 frames whose every pixel is the frame's own position: a batch says which frames it holds."""
    return torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 1, size, size).contiguous()


def test_each_rank_gets_its_share_of_one_global_draw_with_the_same_frames_maps():
    images = frames_numbered()
    maps = images.clone() + 100  # each frame's "condition map", told apart by the same number
    draws = [RealDraws(FrameDataset.of_images(images), 8, torch.Generator().manual_seed(5), conditions=maps,
                       rank=rank, world_size=2) for rank in (0, 1)]  # fmt: skip
    whole = RealDraws(images, 8, torch.Generator().manual_seed(5), conditions=maps)
    halves, full = [d() for d in draws], whole()
    assert torch.equal(torch.cat([h.index for h in halves]), full.index) and len(halves[0].index) == 4
    for batch in (*halves, full):
        assert torch.equal(batch.images, to_float(images[batch.index]))  # the frames the indices name
        assert torch.equal(batch.conditions, maps[batch.index])  # and the maps of the same frames
    assert [d.drawn for d in draws] == [8, 8] and whole.drawn == 8  # kimg counts the global batch
    whole()
    assert whole.drawn == 16


def test_a_replayed_step_draws_the_same_frames_and_channels_last_is_kept():
    images = frames_numbered(size=4).expand(12, 2, 4, 4).contiguous()  # two channels: layouts differ in strides
    g = torch.Generator()
    draws = RealDraws(images, 6, g, channels_last=True)
    g.manual_seed(3)
    first = draws()
    g.manual_seed(3)
    again = draws()
    assert torch.equal(first.index, again.index) and first.conditions is None
    plain = RealDraws(images, 6, torch.Generator().manual_seed(3))()
    assert first.images.is_contiguous(memory_format=torch.channels_last) and not plain.images.is_contiguous(
        memory_format=torch.channels_last)
    assert torch.equal(first.images, plain.images)
