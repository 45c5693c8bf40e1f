"""Evaluation of trained weights: metrics, the Moving MNIST and folder evaluations, and their pictures."""
