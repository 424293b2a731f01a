"""Training: recipes, the one training loop, losses, augmentation, and one module per task."""
