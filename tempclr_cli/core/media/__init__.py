"""Media: reading and writing video files (PyAV), synthetic datasets, subtitle formats.

Choices the commands offer are declared here, in a module that imports nothing heavy.
"""

CLASS_BY = ("shape-motion", "motion")  # synth's action classes: a shape doing a motion, or the motion alone
