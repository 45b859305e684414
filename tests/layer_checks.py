"""The standard checks every layer of the package passes (see ../shared/style.md).

``run_layer_checks`` runs: weight count and shapes, config round-trip, ``.keras`` save/load
round-trip with allclose outputs, a one-step ``fit`` that changes every trainable weight, and
both mixed-precision policies (the output dtype is the policy's compute dtype, or float32 for
layers that must stay float32). Hand-computed values and invalid arguments are per layer.
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


def assert_allclose_nested(a, b, atol=1e-6):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_allclose(a[k], b[k], atol=atol)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, atol=atol)
    else:
        np.testing.assert_allclose(a, b, atol=atol)


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


def check_one_step_fit(layer, inputs) -> None:
    """One step of ``fit`` through the layer changes each of its trainable weights."""
    symbolic = _symbolic(inputs)
    parts = _flat_outputs(layer(symbolic))
    joined = parts[0] if len(parts) == 1 else keras.layers.Concatenate()(parts)
    head = keras.layers.Dense(1, activation="sigmoid", dtype="float32")(joined)
    model = keras.Model(symbolic, head)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    batch = len(
        next(iter(inputs.values()))
        if isinstance(inputs, dict)
        else (inputs[0] if isinstance(inputs, list | tuple) else inputs)
    )
    labels = (np.arange(batch) % 2).astype("float32")
    before = [np.array(w) for w in layer.trainable_weights]
    history = model.fit(inputs, labels, batch_size=batch, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for old, new in zip(before, layer.trainable_weights, strict=True):
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
            for out in (
                outputs.values()
                if isinstance(outputs, dict)
                else (outputs if isinstance(outputs, list | tuple) else [outputs])
            ):
                assert out.dtype == compute, f"{policy}: output dtype {out.dtype} != {compute}"
                assert np.isfinite(np.asarray(tf.cast(out, "float32"))).all()
            for weight in layer.trainable_weights:
                assert weight.dtype == "float32", f"{policy}: variable {weight.path} not float32"
        finally:
            keras.mixed_precision.set_dtype_policy("float32")


def run_layer_checks(
    make_layer,
    inputs,
    tmp_path,
    *,
    expected_shape,
    expected_trainable: int,
    float32_output: bool = False,
    fit: bool = True,
) -> None:
    """Runs the standard checks on a layer built by ``make_layer()`` and called on ``inputs``.

    Args:
        make_layer: zero-argument factory (called once per check so checks do not interact).
        inputs: array, list of arrays or dict of arrays (one batch).
        expected_shape: output shape, or a list/dict of shapes for multi-output layers.
        expected_trainable: number of trainable scalars after building.
        float32_output: whether the output stays float32 under mixed precision.
        fit: run the one-step fit check (off for layers without trainable weights).
    """
    layer = make_layer()
    outputs = layer(inputs)
    shapes = (
        {k: tuple(v.shape) for k, v in outputs.items()}
        if isinstance(outputs, dict)
        else [tuple(o.shape) for o in outputs]
        if isinstance(outputs, list | tuple)
        else tuple(outputs.shape)
    )
    expected = (
        [tuple(s) for s in expected_shape] if isinstance(expected_shape, list) else expected_shape
    )
    assert shapes == expected
    assert trainable_count(layer) == expected_trainable
    check_config_roundtrip(layer)
    check_keras_roundtrip(make_layer(), inputs, tmp_path)
    if fit:
        check_one_step_fit(make_layer(), inputs)
    check_mixed_precision(make_layer, inputs, float32_output=float32_output)
