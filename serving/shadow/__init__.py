"""Shadow mode, promotion and rollback: a candidate version computes beside the answering one.

``serving.json`` (serving/repository/policy.py) names the served, shadow and previous versions;
the repository manager loads them and applies the choice; :mod:`.runner` runs the candidate on
the answering version's batches after their answers went out; :mod:`.rollout` decides what a
shadow / promote / rollback call writes.
"""
