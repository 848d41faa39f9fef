"""Fine-tuning a published model on the feedback people sent (``digits-train --fine-tune``).

``data`` reads and splits the feedback, ``sets`` holds the images both versions are scored
on, ``gate`` decides whether the candidate may be published, ``report`` writes what happened,
and ``run`` ties them together.
"""
