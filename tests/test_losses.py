import keras
import numpy as np
import pytest
import tensorflow as tf

from tf4ctr_keras import FocalLoss, RCELoss, TwinFocusLoss

RNG = np.random.default_rng(42)
N = 64
LOGITS = RNG.normal(scale=3.0, size=(N, 2)).astype("float32")
LABELS = (RNG.random(N) < 0.4).astype("float32")


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def reference_tf_loss(y, z, alpha, c, gamma):
    """NumPy transcription of the reference TFLoss (tf4ctr_reference.md section 2), float64."""
    y = y.astype(np.float64)[:, None]
    p = _sigmoid(z.astype(np.float64))
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    p_t = y * p + (1 - y) * (1 - p)
    l_easy = np.mean((c + p_t[:, 0]) ** gamma * bce[:, 0])
    l_hard = np.mean(((2 - c) - p_t[:, 1]) ** gamma * bce[:, 1])
    return alpha * l_easy + (1 - alpha) * l_hard


@pytest.mark.parametrize(
    "alpha, c, gamma", [(0.25, 0.8, 2.0), (0.35, 0.9, 1.0), (0.5, 0.0, 3.0), (0.15, 1.0, 0.5)]
)
def test_matches_numpy_transcription_of_the_reference_on_both_labels(alpha, c, gamma):
    assert 0 < LABELS.mean() < 1
    loss = TwinFocusLoss(alpha=alpha, c=c, gamma=gamma)
    got = float(loss(LABELS, LOGITS))
    np.testing.assert_allclose(got, reference_tf_loss(LABELS, LOGITS, alpha, c, gamma), rtol=1e-6)


def test_labels_may_be_batch_or_batch_by_one():
    loss = TwinFocusLoss()
    np.testing.assert_allclose(float(loss(LABELS, LOGITS)), float(loss(LABELS[:, None], LOGITS)))


def test_per_sample_values_make_sample_weight_work():
    loss = TwinFocusLoss(alpha=0.3, c=0.7, gamma=1.0)
    per_sample = np.asarray(loss.call(tf.constant(LABELS), tf.constant(LOGITS)))
    assert per_sample.shape == (N,)
    weights = RNG.random(N).astype("float32")
    got = float(loss(LABELS, LOGITS, sample_weight=weights))
    np.testing.assert_allclose(got, np.sum(per_sample * weights) / N, rtol=1e-6)


def test_gamma_zero_is_plain_bce_on_both_heads():
    p = _sigmoid(LOGITS.astype(np.float64))
    y = LABELS[:, None]
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(0)
    got = float(TwinFocusLoss(alpha=0.3, c=0.5, gamma=0.0)(LABELS, LOGITS))
    np.testing.assert_allclose(got, 0.3 * bce[0] + 0.7 * bce[1], rtol=1e-6)


@pytest.mark.parametrize("alpha, c, gamma", [(0.25, 0.8, 2.0), (0.4, 0.7, 1.0), (0.25, 0.9, 3.0)])
def test_gradient_for_positives_matches_eq_14_15(alpha, c, gamma):
    z = tf.Variable(LOGITS)
    y = np.ones(N, "float32")
    with tf.GradientTape() as tape:
        value = TwinFocusLoss(alpha=alpha, c=c, gamma=gamma)(y, z)
    grad = tape.gradient(value, z).numpy().astype(np.float64)
    p = _sigmoid(LOGITS.astype(np.float64))
    ps, pc = p[:, 0], p[:, 1]
    m = 2 - c
    # d/dz [-(c + p)^g log p] = -(c + p)^(g-1) (1 - p) [(c + p) + g p log p]   (Eq. 14, simple)
    simple = -((c + ps) ** (gamma - 1)) * (1 - ps) * ((c + ps) + gamma * ps * np.log(ps))
    # d/dz [-(m - p)^g log p] = -(m - p)^(g-1) (1 - p) [(m - p) - g p log p]   (Eq. 14, complex)
    complex_ = -((m - pc) ** (gamma - 1)) * (1 - pc) * ((m - pc) - gamma * pc * np.log(pc))
    # Eq. 15: weighted by alpha and 1 - alpha; the batch mean divides by N.
    np.testing.assert_allclose(grad[:, 0], alpha * simple / N, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(grad[:, 1], (1 - alpha) * complex_ / N, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"c": 1.2}, "`c` must be in \\[0.0, 1.0\\]. Received: `c=1.2`"),
        ({"c": -0.1}, "`c`"),
        ({"gamma": -1.0}, "gamma"),
    ],
)
def test_invalid_hyperparameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TwinFocusLoss(**kwargs)


def test_wrong_prediction_shape_is_explained():
    with pytest.raises(ValueError, match=r"\[batch, 2\]"):
        TwinFocusLoss()(LABELS, LOGITS[:, :1])


def test_registered_and_config_round_trip():
    loss = TwinFocusLoss(alpha=0.35, c=0.9, gamma=1.0)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, TwinFocusLoss)
    assert (restored.alpha, restored.c, restored.gamma) == (0.35, 0.9, 1.0)
    np.testing.assert_allclose(float(restored(LABELS, LOGITS)), float(loss(LABELS, LOGITS)))


def test_float16_logits_give_a_float32_loss():
    value = TwinFocusLoss()(LABELS, LOGITS.astype("float16"))
    assert value.dtype == "float32"
    np.testing.assert_allclose(
        float(value), reference_tf_loss(LABELS, LOGITS.astype("float16"), 0.25, 0.8, 2.0), rtol=1e-5
    )


PROBS = _sigmoid(LOGITS[:, :1]).astype("float32")


def test_focal_loss_matches_numpy_and_is_not_detached():
    p = PROBS.astype(np.float64)[:, 0]
    y = LABELS
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    p_t = y * p + (1 - y) * (1 - p)
    np.testing.assert_allclose(
        float(FocalLoss(gamma=2.0)(LABELS, PROBS)), np.mean((1 - p_t) ** 2 * bce), rtol=1e-5
    )
    z = tf.Variable(LOGITS[:, :1])
    with tf.GradientTape() as tape:
        value = FocalLoss(gamma=2.0, from_logits=True)(LABELS, z)
    g = tape.gradient(value, z).numpy()[:, 0].astype(np.float64)
    q = _sigmoid(LOGITS[:, 0].astype(np.float64))
    qt = y * q + (1 - y) * (1 - q)
    # d/dz (1-pt)^2 * -log pt with dpt/dz = (2y-1) q (1-q)
    dpt = (2 * y - 1) * q * (1 - q)
    expected = (-2 * (1 - qt) * -np.log(qt) - (1 - qt) ** 2 / qt) * dpt / N
    np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-9)


def test_rce_loss_matches_numpy_and_detaches_p_t():
    y = LABELS
    z = tf.Variable(LOGITS[:, :1])
    with tf.GradientTape() as tape:
        value = RCELoss(gamma=0.5, from_logits=True)(LABELS, z)
    q = _sigmoid(LOGITS[:, 0].astype(np.float64))
    qt = y * q + (1 - y) * (1 - q)
    bce = -np.log(qt)
    np.testing.assert_allclose(float(value), np.mean(qt**0.5 * bce), rtol=1e-5)
    g = tape.gradient(value, z).numpy()[:, 0]
    np.testing.assert_allclose(g, qt**0.5 * (q - y) / N, rtol=1e-4, atol=1e-9)  # p_t held fixed
