"""Training side of digits-server: MNIST loading, Keras models, ONNX export and publishing.

Importing this package does not import TensorFlow; the modules that need it import it lazily.
"""
