"""Inputs: files tailed or watched, hosts sampled."""
