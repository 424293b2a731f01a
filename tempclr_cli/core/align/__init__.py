"""Alignment: batched DTW / soft-DTW / OTAM kernels and step localisation in one video."""
