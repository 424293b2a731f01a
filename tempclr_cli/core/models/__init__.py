"""Trainable networks: TempCLR heads over features, the TCLR R3D backbone and projection head."""
