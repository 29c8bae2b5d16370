"""xstilts: syntactic vs semantic English intermediate-task training, model scale,
and zero-shot cross-lingual transfer on PAWS-X."""

__version__ = "0.1.0"
