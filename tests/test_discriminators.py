import torch

from pipeline_lib.models.cyclegan import ImageDiscriminator, ResnetGenerator
from pipeline_lib.models.discriminators import FeatureDiscriminator


def test_feature_discriminator_treats_vectors_as_1x1_maps():
    disc = FeatureDiscriminator(500)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in disc.modules()) == 3  # CyCADA: 3 fully connected layers
    v = torch.randn(4, 500)
    assert disc(v).shape == (4, 1, 1, 1)
    fmap = v[:, :, None, None].expand(4, 500, 3, 5)
    scores = disc(fmap)
    assert scores.shape == (4, 1, 3, 5)
    torch.testing.assert_close(scores, disc(v).expand(4, 1, 3, 5))  # every location scored alike


def test_generator_keeps_size_and_range_and_image_discriminator_scores_per_location():
    for channels, size in [(1, 28), (3, 32)]:
        gen = ResnetGenerator(channels, channels, ngf=8, n_down=2, n_blocks=2)
        x = torch.rand(2, channels, size, size) * 2 - 1
        y = gen(x)
        assert y.shape == x.shape and y.abs().max() <= 1
        disc = ImageDiscriminator(channels, ndf=8, n_layers=6)
        assert sum(isinstance(m, torch.nn.Conv2d) for m in disc.modules()) == 6
        scores = disc(x)
        assert scores.shape[:2] == (2, 1) and scores.shape[2] > 1  # a map of scores, not one per image
