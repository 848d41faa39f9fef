"""Corrections people send about typed answers, and the store that keeps them.

- :mod:`serving.feedback.answers`: recent typed answers by request id (bounded buffer).
- :mod:`serving.feedback.store`: the one store interface; :func:`open_store` picks the backend
  from the URL (``sqlite:///PATH`` embedded, ``postgresql://...`` shared).
- :mod:`serving.feedback.service`: what the transports call (checks, writer thread, metric).
- :mod:`serving.feedback.cli`: ``digits-feedback stats | export | prune``.
- :func:`serving.feedback.reading.read_feedback`: arrays + labels + timestamps for training.
"""
