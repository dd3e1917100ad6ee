"""Unsupervised domain adaptation pipeline library."""
