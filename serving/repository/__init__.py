"""The on-disk model repository: layout, manifests, loading, hot updates."""
