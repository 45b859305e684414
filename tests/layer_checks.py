"""The standard checks every layer of the package passes (see ../shared/style.md).

:func:`run_layer_test` takes a layer class, its constructor arguments and one batch of input,
as keras-hub's ``TestCase.run_layer_test``, and checks: the output shape, the number of
trainable variables and scalars (and non-trainable variables), the literal output when one is
given (with ``ones``/``zeros`` initializers, hand-computed in the test), the config round trip,
the ``.keras`` save/load round trip with equal outputs, a one-step ``fit`` that changes every
trainable weight, and both mixed-precision policies (the output dtype is the policy's compute
dtype, or float32 for layers that must stay float32). Invalid arguments are tested per layer.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def _symbolic(value):
    if isinstance(value, dict):
        return {k: _symbolic_one(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_symbolic_one(v) for v in value]
    return _symbolic_one(value)


def _symbolic_one(array, name=None):
    array = np.asarray(array)
    return keras.Input(shape=array.shape[1:], dtype=str(array.dtype), name=name)


def _flat_outputs(outputs):
    items = outputs.values() if isinstance(outputs, dict) else outputs
    if not isinstance(outputs, dict | list | tuple):
        items = [outputs]
    return [keras.layers.Flatten()(keras.ops.cast(o, "float32")) for o in items]


def _items(outputs) -> list:
    if isinstance(outputs, dict):
        return list(outputs.values())
    return list(outputs) if isinstance(outputs, list | tuple) else [outputs]


def wrap(layer, inputs) -> keras.Model:
    """A functional model ``inputs -> layer`` (how the layer is saved and loaded)."""
    symbolic = _symbolic(inputs)
    return keras.Model(symbolic, layer(symbolic))


def trainable_count(layer) -> int:
    return int(sum(np.prod(w.shape) for w in layer.trainable_weights))


def _to_numpy(outputs):
    if isinstance(outputs, dict):
        return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}
    if isinstance(outputs, list | tuple):
        return [keras.ops.convert_to_numpy(v) for v in outputs]
    return keras.ops.convert_to_numpy(outputs)


def assert_allclose_nested(a, b, atol=1e-6, rtol=1e-7):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_allclose(a[k], b[k], atol=atol, rtol=rtol)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, atol=atol, rtol=rtol)
    else:
        np.testing.assert_allclose(a, b, atol=atol, rtol=rtol)


def check_config_roundtrip(layer) -> None:
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


def check_keras_roundtrip(layer, inputs, tmp_path) -> None:
    model = wrap(layer, inputs)
    expected = _to_numpy(model(inputs, training=False))
    path = tmp_path / f"{layer.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert_allclose_nested(expected, _to_numpy(loaded(inputs, training=False)))


def _biases_cancelled_by_batch_norm(layer) -> set[str]:
    """Paths of the Dense biases that a BatchNorm follows inside an MLPBlock: training-mode
    BatchNorm removes any per-unit shift, so their gradient is zero (in PyTorch too); one step
    changes them only by rounding noise, which the fused BatchNorm kernel does not make."""
    from tf4ctr_keras.layers import MLPBlock

    found = set()
    for sub in layer._flatten_layers(include_self=True, recursive=True):
        if isinstance(sub, MLPBlock) and sub.batch_norm:
            found.update(d.bias.path for d in sub.dense_layers if d.bias is not None)
    return found


def check_one_step_fit(layer, inputs) -> None:
    """One step of ``fit`` through the layer changes each of its trainable weights (except the
    biases a BatchNorm cancels, whose gradient is zero)."""
    symbolic = _symbolic(inputs)
    parts = _flat_outputs(layer(symbolic))
    joined = parts[0] if len(parts) == 1 else keras.layers.Concatenate()(parts)
    head = keras.layers.Dense(1, activation="sigmoid", dtype="float32")(joined)
    model = keras.Model(symbolic, head)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    first = next(iter(inputs.values())) if isinstance(inputs, dict) else _items(inputs)[0]
    batch = len(first)
    labels = (np.arange(batch) % 2).astype("float32")
    before = [np.array(w) for w in layer.trainable_weights]
    history = model.fit(inputs, labels, batch_size=batch, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    cancelled = _biases_cancelled_by_batch_norm(layer)
    for old, new in zip(before, layer.trainable_weights, strict=True):
        if new.path not in cancelled:
            assert not np.allclose(old, np.array(new)), f"weight {new.path} did not change"


def check_mixed_precision(make_layer, inputs, float32_output: bool = False) -> None:
    for policy in ("mixed_float16", "mixed_bfloat16"):
        keras.mixed_precision.set_dtype_policy(policy)
        try:
            layer = make_layer()
            outputs = layer(inputs)
            compute = (
                "float32" if float32_output else keras.mixed_precision.dtype_policy().compute_dtype
            )
            for out in _items(outputs):
                assert out.dtype == compute, f"{policy}: output dtype {out.dtype} != {compute}"
                assert np.isfinite(np.asarray(tf.cast(out, "float32"))).all()
            for weight in layer.trainable_weights:
                assert weight.dtype == "float32", f"{policy}: variable {weight.path} not float32"
        finally:
            keras.mixed_precision.set_dtype_policy("float32")


def run_layer_test(
    layer_cls,
    init_kwargs: dict,
    input_data,
    tmp_path,
    *,
    expected_output_shape,
    expected_num_trainable_params: int,
    expected_num_trainable_weights: int | None = None,
    expected_num_non_trainable_weights: int | None = None,
    expected_output=None,
    float32_output: bool = False,
    run_training_check: bool = True,
    run_mixed_precision_check: bool = True,
) -> None:
    """Runs the standard checks on ``layer_cls(**init_kwargs)`` called on ``input_data``.

    Args:
        layer_cls: the layer class (a fresh instance is made per check, so checks do not
            interact).
        init_kwargs: constructor arguments.
        input_data: array, list of arrays or dict of arrays (one batch).
        expected_output_shape: output shape, or a list/dict of shapes for multi-output layers.
        expected_num_trainable_params: number of trainable scalars after building.
        expected_num_trainable_weights: number of trainable variables, if given.
        expected_num_non_trainable_weights: number of non-trainable variables, if given.
        expected_output: the literal inference output (array or list/dict of arrays), if given.
        float32_output: whether the output stays float32 under mixed precision.
        run_training_check: run the one-step fit check (off for layers without weights).
        run_mixed_precision_check: run both mixed-precision policies.
    """

    def make_layer():
        return layer_cls(**init_kwargs)

    layer = make_layer()
    outputs = layer(input_data, training=False)
    shapes = (
        {k: tuple(v.shape) for k, v in outputs.items()}
        if isinstance(outputs, dict)
        else [tuple(o.shape) for o in outputs]
        if isinstance(outputs, list | tuple)
        else tuple(outputs.shape)
    )
    expected = (
        [tuple(s) for s in expected_output_shape]
        if isinstance(expected_output_shape, list)
        else expected_output_shape
    )
    assert shapes == expected
    assert trainable_count(layer) == expected_num_trainable_params
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights
    if expected_num_non_trainable_weights is not None:
        assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights
    if expected_output is not None:
        assert_allclose_nested(_to_numpy(outputs), expected_output, atol=1e-6, rtol=1e-6)
    check_config_roundtrip(layer)
    check_keras_roundtrip(make_layer(), input_data, tmp_path)
    if run_training_check:
        check_one_step_fit(make_layer(), input_data)
    if run_mixed_precision_check:
        check_mixed_precision(make_layer, input_data, float32_output=float32_output)
