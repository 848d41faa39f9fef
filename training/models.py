"""Model registry: one named Keras builder per model, with its default training config.

Importing this module does not import TensorFlow/Keras; each builder imports Keras when called,
so the CLI, the tests of shipped models and the clients can read the registry cheaply.

Every model takes float32 images [N,28,28] in [0,1] (pixel / 255) on an input named ``images``
and ends in a layer named ``probabilities``: softmax [N,10], or sigmoid [N,1] for one_vs_rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import keras

__all__ = [
    "DIGIT_LABELS",
    "INPUT_NAME",
    "MODELS",
    "OUTPUT_NAME",
    "ModelSpec",
    "OutputKind",
    "TrainConfig",
    "accuracy",
    "compile_model",
    "predict_labels",
]

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
DIGIT_LABELS: tuple[str, ...] = tuple(str(d) for d in range(10))
OutputKind = Literal["softmax", "sigmoid"]
OptimizerName = Literal["sgd", "adam", "rmsprop", "adadelta"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (recorded in model.json)."""

    name: str
    epochs: int
    batch_size: int
    optimizer: OptimizerName
    learning_rate: float
    validation_split: float = 0.1
    patience: int = 3
    seed: int = 42
    subset: int | None = None  # number of training images (before the validation split)
    # Multiply the learning rate by this factor when val_loss stalls for lr_patience epochs
    # (None: constant learning rate). Lets plain SGD take big steps early and settle later.
    lr_decay: float | None = None
    lr_patience: int = 1
    # Randomly translate each training image by up to this many pixels per epoch (0: off).
    # Validation and test images are never shifted.
    augment_shift: int = 0
    # "robust": the tf.data augmentation of training.augment (affine, elastic, stroke width,
    # blur, noise, then the server's preparation). None: no such augmentation.
    augment: Literal["robust"] | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if not 0.0 < self.validation_split < 1.0:
            raise ValueError("validation_split must be in (0, 1)")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be > 0")
        if self.patience < 0:
            raise ValueError("patience must be >= 0")
        if self.subset is not None and self.subset < 10:
            raise ValueError("subset must be >= 10 images")
        if self.lr_decay is not None and not 0.0 < self.lr_decay < 1.0:
            raise ValueError("lr_decay must be in (0, 1)")
        if not 0 <= self.augment_shift <= 4:
            raise ValueError("augment_shift must be 0..4 pixels")
        if self.augment not in (None, "robust"):
            raise ValueError(f"unknown augment {self.augment!r}")
        if self.augment and self.augment_shift:
            raise ValueError("augment and augment_shift cannot be combined")

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed; ``None`` values are ignored (unset CLI options)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it, how to train it by default, what it must reach."""

    name: str
    builder: Callable[[TrainConfig], keras.Model]
    config: TrainConfig
    description: str
    architecture: str
    required_accuracy: float
    output_kind: OutputKind = "softmax"
    labels: tuple[str, ...] = DIGIT_LABELS
    positive_digit: int | None = None  # sigmoid models: the digit that is label index 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def output_width(self) -> int:
        """Width of the ``probabilities`` output: 10 for softmax, 1 for sigmoid."""
        return 1 if self.output_kind == "sigmoid" else len(self.labels)

    def targets(self, digits: np.ndarray) -> np.ndarray:
        """Training/eval targets from digit labels: the digit, or 0/1 for one-vs-rest."""
        digits = np.asarray(digits)
        if self.output_kind == "sigmoid":
            return (digits == self.positive_digit).astype(np.float32)
        return digits.astype(np.int64)

    def build(self, config: TrainConfig | None = None) -> keras.Model:
        """Build and compile the Keras model for ``config`` (default: the spec's config)."""
        return self.builder(config or self.config)


def predict_labels(probabilities: np.ndarray, output_kind: OutputKind) -> np.ndarray:
    """Class index per row: argmax for softmax, ``p > 0.5`` for a single sigmoid output."""
    probabilities = np.asarray(probabilities)
    if output_kind == "sigmoid":
        return (probabilities.reshape(len(probabilities), -1)[:, 0] > 0.5).astype(np.int64)
    return np.argmax(probabilities, axis=1).astype(np.int64)


def accuracy(probabilities: np.ndarray, targets: np.ndarray, output_kind: OutputKind) -> float:
    """Fraction of rows whose predicted label equals ``targets`` (as from ModelSpec.targets)."""
    predicted = predict_labels(probabilities, output_kind)
    return float(np.mean(predicted == np.asarray(targets).astype(np.int64)))


# --------------------------------------------------------------------------- builders


def _optimizer(config: TrainConfig) -> Any:
    import keras

    factories: dict[str, Callable[..., Any]] = {
        "sgd": keras.optimizers.SGD,
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "adadelta": keras.optimizers.Adadelta,
    }
    try:
        return factories[config.optimizer](learning_rate=config.learning_rate)
    except KeyError:
        raise ValueError(f"unknown optimizer {config.optimizer!r}") from None


def _input() -> Any:
    import keras

    return keras.Input(shape=(28, 28), dtype="float32", name=INPUT_NAME)


def _compile(model: Any, config: TrainConfig, output_kind: OutputKind) -> Any:
    if output_kind == "sigmoid":
        loss, metric = "binary_crossentropy", "binary_accuracy"
    else:
        loss, metric = "sparse_categorical_crossentropy", "sparse_categorical_accuracy"
    # A single metric named "accuracy" in the logs keeps history keys the same for every model.
    import keras

    acc = (
        keras.metrics.BinaryAccuracy(name="accuracy")
        if metric == "binary_accuracy"
        else keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    )
    model.compile(optimizer=_optimizer(config), loss=loss, metrics=[acc])
    return model


def compile_model(model: Any, config: TrainConfig, output_kind: OutputKind) -> Any:
    """Compile ``model`` as training does (the config's optimizer; loss and an "accuracy"
    metric for its output kind): for a loaded model that trains again (fine-tuning)."""
    return _compile(model, config, output_kind)


def build_softmax(config: TrainConfig) -> keras.Model:
    """Multinomial logistic regression: 784 -> 10 softmax."""
    import keras
    from keras import layers

    inputs = _input()
    x = layers.Flatten(name="flatten")(inputs)
    outputs = layers.Dense(10, activation="softmax", name=OUTPUT_NAME)(x)
    return _compile(keras.Model(inputs, outputs, name="softmax"), config, "softmax")


def build_mlp16(config: TrainConfig) -> keras.Model:
    """784 -> 16 sigmoid -> 10 softmax."""
    import keras
    from keras import layers

    inputs = _input()
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(16, activation="sigmoid", name="hidden")(x)
    outputs = layers.Dense(10, activation="softmax", name=OUTPUT_NAME)(x)
    return _compile(keras.Model(inputs, outputs, name="mlp16"), config, "softmax")


def build_mlp100(config: TrainConfig) -> keras.Model:
    """784 -> 100 ReLU -> 50 ReLU -> 10 softmax."""
    import keras
    from keras import layers

    inputs = _input()
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(100, activation="relu", name="hidden1")(x)
    x = layers.Dense(50, activation="relu", name="hidden2")(x)
    outputs = layers.Dense(10, activation="softmax", name=OUTPUT_NAME)(x)
    return _compile(keras.Model(inputs, outputs, name="mlp100"), config, "softmax")


def build_cnn(config: TrainConfig) -> keras.Model:
    """conv32 3x3 -> conv32 3x3 -> maxpool 2 -> dropout .25 -> dense 128 -> dropout .5 -> 10."""
    import keras
    from keras import layers

    inputs = _input()
    # Conv2D wants a channel axis; the served contract stays [N,28,28].
    x = layers.Reshape((28, 28, 1), name="add_channel")(inputs)
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(x)
    x = layers.Conv2D(32, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Dropout(0.25, name="dropout1")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    x = layers.Dropout(0.5, name="dropout2")(x)
    outputs = layers.Dense(10, activation="softmax", name=OUTPUT_NAME)(x)
    return _compile(keras.Model(inputs, outputs, name="cnn"), config, "softmax")


# Batch-norm statistics follow the last ~10 batches rather than Keras's ~100: the same at the
# end of a full run, and usable after the few hundred steps of a smoke test.
BN_MOMENTUM = 0.9


def build_robust(config: TrainConfig) -> keras.Model:
    """Five 3x3 conv layers with batch norm (32-32 / pool / 64-64 / pool / 128), dense 128."""
    import keras
    from keras import layers

    def conv(x: Any, filters: int, padding: str, name: str) -> Any:
        # No bias: batch norm's shift replaces it (and onnxruntime folds BN into the conv).
        x = layers.Conv2D(filters, 3, padding=padding, use_bias=False, name=name)(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    inputs = _input()
    x = layers.Reshape((28, 28, 1), name="add_channel")(inputs)
    x = conv(x, 32, "valid", "conv1")  # 26x26
    x = conv(x, 32, "valid", "conv2")  # 24x24
    x = layers.MaxPooling2D(2, name="pool1")(x)  # 12x12
    x = conv(x, 64, "same", "conv3")
    x = conv(x, 64, "same", "conv4")
    x = layers.MaxPooling2D(2, name="pool2")(x)  # 6x6
    x = conv(x, 128, "valid", "conv5")  # 4x4
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.3, name="dropout1")(x)
    x = layers.Dense(128, use_bias=False, name="dense")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="dense_bn")(x)
    x = layers.ReLU(name="dense_relu")(x)
    x = layers.Dropout(0.3, name="dropout2")(x)
    outputs = layers.Dense(10, activation="softmax", name=OUTPUT_NAME)(x)
    return _compile(keras.Model(inputs, outputs, name="robust"), config, "softmax")


def build_one_vs_rest(config: TrainConfig) -> keras.Model:
    """Logistic regression for "is it a 1?": 784 -> 1 sigmoid."""
    import keras
    from keras import layers

    inputs = _input()
    x = layers.Flatten(name="flatten")(inputs)
    outputs = layers.Dense(1, activation="sigmoid", name=OUTPUT_NAME)(x)
    return _compile(keras.Model(inputs, outputs, name="one_vs_rest"), config, "sigmoid")


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="softmax",
            builder=build_softmax,
            config=TrainConfig(
                "softmax",
                epochs=50,
                batch_size=128,
                optimizer="rmsprop",
                learning_rate=1e-3,
                patience=5,
            ),
            description="Softmax regression (784 -> 10), RMSprop",
            architecture="784 -> 10 softmax",
            required_accuracy=0.925,
        ),
        ModelSpec(
            name="mlp16",
            builder=build_mlp16,
            config=TrainConfig(
                "mlp16", epochs=50, batch_size=128, optimizer="adam", learning_rate=1e-3, patience=4
            ),
            description="MLP 784 -> 16 sigmoid -> 10 softmax, Adam",
            architecture="784 -> 16 sigmoid -> 10 softmax",
            required_accuracy=0.940,
        ),
        ModelSpec(
            name="mlp100",
            builder=build_mlp100,
            # Plain SGD at 0.5 plateaus near 0.975 and overfits by epoch 5; shifting training
            # images by up to 2 px and dividing the rate by 5 on plateaus reaches ~0.984.
            config=TrainConfig(
                "mlp100",
                epochs=40,
                batch_size=100,
                optimizer="sgd",
                learning_rate=0.5,
                patience=5,
                lr_decay=0.2,
                lr_patience=2,
                augment_shift=2,
            ),
            description="MLP 784 -> 100 ReLU -> 50 ReLU -> 10 softmax, SGD lr 0.5",
            architecture="784 -> 100 ReLU -> 50 ReLU -> 10 softmax",
            required_accuracy=0.980,
        ),
        ModelSpec(
            name="cnn",
            builder=build_cnn,
            config=TrainConfig(
                "cnn", epochs=12, batch_size=128, optimizer="adam", learning_rate=1e-3, patience=2
            ),
            description="CNN conv32-conv32-maxpool-dropout-dense128-dropout-softmax, Adam",
            architecture=(
                "conv32 3x3 ReLU -> conv32 3x3 ReLU -> maxpool 2 -> dropout .25 -> "
                "dense 128 ReLU -> dropout .5 -> 10 softmax"
            ),
            required_accuracy=0.990,
        ),
        ModelSpec(
            name="robust",
            builder=build_robust,
            # Augmented data does not overfit quickly: a few more epochs, and the rate cut by
            # 3 whenever val_loss stalls for an epoch.
            config=TrainConfig(
                "robust",
                epochs=16,
                batch_size=128,
                optimizer="adam",
                learning_rate=2e-3,
                patience=4,
                lr_decay=0.3,
                lr_patience=1,
                augment="robust",
            ),
            description=(
                "CNN with batch norm (conv32-conv32-pool-conv64-conv64-pool-conv128-dense128), "
                "trained on augmented MNIST prepared like the server's photos and drawings"
            ),
            architecture=(
                "conv32 3x3 -> conv32 3x3 -> maxpool 2 -> conv64 3x3 -> conv64 3x3 -> maxpool 2 "
                "-> conv128 3x3 (each conv + batch norm + ReLU) -> dropout .3 -> dense 128 + "
                "batch norm + ReLU -> dropout .3 -> 10 softmax"
            ),
            required_accuracy=0.994,
        ),
        ModelSpec(
            name="one_vs_rest",
            builder=build_one_vs_rest,
            config=TrainConfig(
                "one_vs_rest",
                epochs=30,
                batch_size=100,
                optimizer="sgd",
                learning_rate=0.1,
                patience=4,
            ),
            description='Logistic regression "is it a 1?" (784 -> 1 sigmoid), SGD lr 0.1',
            architecture="784 -> 1 sigmoid (label = digit == 1)",
            required_accuracy=0.993,
            output_kind="sigmoid",
            labels=("not 1", "1"),
            positive_digit=1,
        ),
    )
}
