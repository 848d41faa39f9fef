"""MNIST digit-classification model server."""

__version__ = "0.1.0"
