"""Encoders (open_clip image/text towers, TCLR backbones) and feature extraction."""
