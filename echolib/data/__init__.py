"""Data: the built-in phantom, EchoNet-Dynamic preprocessing and frame datasets."""
