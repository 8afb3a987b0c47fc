"""Differentiable, GPU-resident data augmentation for GAN discriminators."""

from echolib.augment.ada import PIPES, AdaptiveAugment, AugmentPipe, Draws, GeneratorDraws, adjust_p

__all__ = ["PIPES", "AdaptiveAugment", "AugmentPipe", "Draws", "GeneratorDraws", "adjust_p"]
