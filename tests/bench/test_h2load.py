"""bench/h2load.py against a real server: real answers are counted, gRPC errors are not."""

import pytest

from bench.h2load import (
    EMPTY_FRAME_BYTES,
    MODEL_INFER_PATH,
    grpc_frame,
    h2load_binary,
    model_infer_frames,
    parse,
    run,
)
from serving.api import open_inference_pb2 as pb

needs_h2load = pytest.mark.skipif(
    h2load_binary() is None, reason="h2load not installed (scripts/setup.sh --system)"
)


def test_frame_is_a_zero_byte_a_big_endian_length_and_the_message():
    assert grpc_frame(b"abc") == b"\x00\x00\x00\x00\x03abc"


@needs_h2load
def test_every_answer_is_counted(server):
    host, port = server.address.split(":")
    frame, answer_bytes = model_infer_frames("cnn", host, int(port))
    result = run(f"http://{server.address}{MODEL_INFER_PATH}", frame, 200, 2, 4)
    assert (result.total, result.status_2xx, result.answers(answer_bytes)) == (200, 200, 200)
    assert result.data_bytes == 200 * answer_bytes
    assert result.requests_per_s > 0 and result.mean_ms > 0


@needs_h2load
def test_grpc_errors_are_http_200_but_not_answers(server):
    host, port = server.address.split(":")
    _frame, answer_bytes = model_infer_frames("cnn", host, int(port))
    request = pb.ModelInferRequest(model_name="no-such-model")
    request.inputs.add(name="images", datatype="FP32", shape=[1, 28, 28])
    request.raw_input_contents.append(bytes(4 * 784))
    frame = grpc_frame(request.SerializeToString())
    result = run(f"http://{server.address}{MODEL_INFER_PATH}", frame, 50, 1, 4)
    assert result.status_2xx == 50  # what h2load alone would call success
    assert result.answers(answer_bytes) == 0
    assert result.data_bytes == 50 * EMPTY_FRAME_BYTES


def test_parse_reads_the_summary():
    text = """\
finished in 1.50s, 13333.33 req/s, 2.10MB/s
requests: 20000 total, 20000 started, 20000 done, 19990 succeeded, 10 failed, 10 errored, 0 timeout
status codes: 19990 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 3.15MB (3300000) total, 120.00KB (122880) headers (space savings 90.00%), \
2.90MB (3035540) data
                     min         max         mean         sd        +/- sd
time for request:      150us      9.80ms      4.72ms      1.10ms    68.00%
"""
    result = parse(text)
    assert (result.seconds, result.requests_per_s, result.total) == (1.5, 13333.33, 20000)
    assert (result.succeeded, result.failed, result.status_2xx) == (19990, 10, 19990)
    assert result.data_bytes == 3035540 and result.mean_ms == 4.72
    assert result.answers(152) == 19990 - 20
    with pytest.raises(ValueError, match="are not 19990 frames"):
        result.answers(150)
    with pytest.raises(ValueError, match="no match"):
        parse("h2load: connection refused")
