"""Model runtimes: onnxruntime sessions, execution providers, CPU budget."""
