"""Tests of helpers.quantization's numpy round trip: int8 levels, scale, zero point and the
rounding error it promises, and that its symmetric mode is what ONNX Runtime does to weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.quantization import int8_round_trip, largest_weight_matrix


def test_asymmetric_round_trip_spreads_min_to_max_over_256_levels() -> None:
    x = np.array([-1.0, 0.0, 0.5, 3.0], dtype=np.float32)
    trip = int8_round_trip(x)
    assert trip.scale == pytest.approx(4.0 / 255)
    assert trip.zero_point == round(-128 + 1.0 / trip.scale)  # the level of 0
    assert trip.q.dtype == np.int8 and trip.q.min() == -128 and trip.q.max() == 127
    assert trip.restored[1] == 0.0  # zero stays exact
    assert np.abs(trip.restored - x).max() <= trip.scale / 2 + 1e-7


def test_symmetric_round_trip_has_zero_point_zero_and_bounded_error() -> None:
    x = np.random.default_rng(0).normal(0, 0.05, size=(64, 32)).astype(np.float32)
    trip = int8_round_trip(x, symmetric=True)
    assert trip.zero_point == 0
    assert trip.scale == pytest.approx(np.abs(x).max() / 127)
    assert abs(int(trip.q.min())) <= 127 and abs(int(trip.q.max())) <= 127
    error = np.abs(trip.restored - x)
    assert error.max() <= trip.scale / 2 + 1e-7
    assert 0 < error.mean() < 0.1 * x.std()  # far below the weights' spread
    # A larger spread gives a coarser grid: twice the values, twice the scale.
    assert int8_round_trip(2 * x, symmetric=True).scale == pytest.approx(2 * trip.scale)


def test_an_all_zero_tensor_round_trips_exactly() -> None:
    trip = int8_round_trip(np.zeros(5))
    assert np.array_equal(trip.restored, np.zeros(5)) and np.all(trip.q == trip.zero_point)


def test_symmetric_mode_matches_onnx_runtimes_int8_weights(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight = np.random.default_rng(1).normal(0, 0.1, size=(32, 16)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
        [numpy_helper.from_array(weight, "w")])
    source, target = tmp_path / "m.onnx", tmp_path / "m.int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), source)
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    stored = {t.name: numpy_helper.to_array(t) for t in onnx.load(target).graph.initializer}
    trip = int8_round_trip(weight, symmetric=True)
    assert float(stored["w_scale"]) == pytest.approx(trip.scale, rel=1e-6)
    assert int(stored["w_zero_point"]) == trip.zero_point
    assert np.array_equal(stored["w_quantized"], trip.q)


def test_largest_weight_matrix_skips_embeddings_and_biases() -> None:
    model = torch.nn.Sequential()
    model.add_module("embeddings", torch.nn.Embedding(1000, 8))
    model.add_module("small", torch.nn.Linear(8, 4))
    model.add_module("large", torch.nn.Linear(8, 16))
    name, values = largest_weight_matrix(model)
    assert name == "large.weight" and values.shape == (16, 8)
    assert np.array_equal(values, model.large.weight.detach().numpy())
