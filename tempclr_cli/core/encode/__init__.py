"""Encoders (open_clip image/text towers, TCLR backbones) and feature extraction.

Choices the commands offer are declared here, in a module that imports nothing heavy.
"""

FEATURE_DTYPES = ("float16", "float32")  # how extract stores features
