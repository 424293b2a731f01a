"""Evaluation protocols: paragraph-video retrieval, nearest neighbours, few-shot, localisation, classification."""
