"""Hand-made responses for the load generator's checks and a misbehaving test server."""

from serving.api import digits_pb2 as dpb


def typed_response(batch: int = 2) -> dpb.ClassifyResponse:
    labels = [str(d) for d in range(10)]
    response = dpb.ClassifyResponse(model="cnn", version="1", labels=labels)
    row = [0.0] * 10
    row[3] = 0.7
    row[5] = 0.3
    for _ in range(batch):
        response.predictions.add(class_index=3, label="3", probability=0.7, probabilities=row)
    return response
