"""Alignment: batched DTW / soft-DTW / OTAM kernels and step localisation in one video.

Choices the commands offer are declared here, in a module that imports nothing heavy.
"""

TRANSFER_MATCHES = ("steps", "clips")  # align --reference: by each reference step's mean clip, or clip to clip
