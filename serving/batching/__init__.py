"""Dynamic batching: queue requests per model, run them as one batch, split results."""
