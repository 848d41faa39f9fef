"""The images the load generator sends and the payloads built from them."""

import numpy as np

from clients.connection import Endpoint
from clients.load import LoadConfig, synthetic_digits, typed_payload
from clients.load.workload import POOL, request_batches
from serving.api import digits_pb2 as dpb


def test_synthetic_digits_are_valid_images():
    images = synthetic_digits(5, seed=2)
    assert images.shape == (5, 28, 28) and images.dtype == np.uint8
    assert images.max() > 200 and (images == 0).mean() > 0.3


def test_payload_pool_cycles_through_the_images():
    images = synthetic_digits(5, seed=1)
    config = LoadConfig(Endpoint(), "cnn", batch=3, images=images)
    batches = request_batches(config)
    assert len(batches) == POOL and all(b.shape == (3, 28, 28) for b in batches)
    np.testing.assert_array_equal(batches[1], images[[3, 4, 0]])
    request = dpb.ClassifyRequest.FromString(typed_payload(config, batches[0], "r1"))
    assert request.raw.count == 3 and request.request_id == "r1" and request.model == "cnn"
