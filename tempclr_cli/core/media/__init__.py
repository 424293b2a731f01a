"""Media: reading and writing video files (PyAV), synthetic datasets, subtitle formats."""
