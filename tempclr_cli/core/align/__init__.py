"""Alignment: batched DTW / soft-DTW / OTAM kernels and step localisation in one video.

Choices the commands offer are declared here, in a module that imports nothing heavy.
"""

# align --reference: by each reference step's mean clip, clip to clip (drops on both sides), or the reference's clips
# found whole inside a longer video (subsequence DTW)
TRANSFER_MATCHES = ("steps", "clips", "subsequence")
