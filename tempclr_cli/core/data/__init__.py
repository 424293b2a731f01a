"""Datasets as files: step annotations, class labels and split lists, feature stores."""
