"""Operations on trained models: another inference density, ensembles."""

import keras

from keras_sparse._validation import check_float, check_inference_density
from keras_sparse.kwinners import KWinnersBase, kwinners_layers


def with_k_inference_factor(model, k_inference_factor):
    """A copy of `model` whose k-winners layers keep more (or fewer) winners at inference.

    Every k-winners layer of the copy (nested models and wrappers such as
    `TimeDistributed` included) has

        k_inference = clip(round(n * percent_on * k_inference_factor), 1, n)

    and everything else (architecture, weights, duty cycles, boost strength,
    learning iterations, training-time `k`) equal to `model`'s. Use it to
    re-evaluate a trained model at another inference density without
    retraining: training never uses `k_inference`, so a model trained with any
    factor is the same model at every factor until `predict` / `evaluate`.

    Args:
        model: a built Functional or Sequential Keras model.
        k_inference_factor: `> 0`, with `percent_on * k_inference_factor <= 1`
            for every k-winners layer (else `ValueError` naming the layer).

    Returns:
        A new, uncompiled model.
    """
    check_float("k_inference_factor", k_inference_factor, 0, None, low_open=True)
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(f"`model` must be a built Keras model. Received: model={model!r}")
    for layer in kwinners_layers(model):  # before cloning, which would hide the layer's error
        check_inference_density(layer.percent_on, k_inference_factor, layer.name)

    def clone_layer(layer):
        config = layer.get_config()
        if isinstance(layer, KWinnersBase):
            config["k_inference_factor"] = k_inference_factor
        return type(layer).from_config(_with_factor(config, k_inference_factor))

    try:
        copy = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    except ValueError as error:
        raise ValueError(
            "`model` must be a Functional or Sequential model (a subclassed model cannot be "
            f"cloned layer by layer). Received: model={model!r}"
        ) from error
    copy.set_weights(model.get_weights())
    return copy


def _with_factor(config, k_inference_factor):
    """`config` with `k_inference_factor` set in every serialized k-winners
    layer it holds (the sublayers of a wrapper such as `TimeDistributed`)."""
    if isinstance(config, list):
        return [_with_factor(item, k_inference_factor) for item in config]
    if not isinstance(config, dict):
        return config
    config = {key: _with_factor(value, k_inference_factor) for key, value in config.items()}
    registered = config.get("registered_name")
    cls = keras.saving.get_registered_object(registered) if isinstance(registered, str) else None
    if isinstance(cls, type) and issubclass(cls, KWinnersBase) and isinstance(config.get("config"), dict):
        config["config"]["k_inference_factor"] = k_inference_factor
    return config


def ensemble(members, from_logits=True, name="ensemble"):
    """One Keras model that averages the class probabilities of `members`:

        p(y | x) = (1/M) * sum_m softmax(f_m(x))     (from_logits=True)
        p(y | x) = (1/M) * sum_m f_m(x)              (from_logits=False)

    The ensemble calls the members' own layers (no copies: training the
    ensemble trains the members); each member is wrapped as
    `"{name}_member_{m}"`, so members built by the same builder (same model
    name) can be combined. The result saves as `.keras`, exports to
    SavedModel / TFLite, and works with `with_k_inference_factor`.

    Args:
        members: two or more distinct built Keras models with one input and
            one output each, of equal shapes.
        from_logits: whether members output logits (the builders here do) or
            probabilities.
        name: name of the ensemble model.

    Returns:
        A Functional model from the members' input to `(batch, classes)`
        probabilities.
    """
    if not isinstance(from_logits, bool):
        raise ValueError(f"`from_logits` must be True or False. Received: from_logits={from_logits!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string. Received: name={name!r}")
    members = list(members) if isinstance(members, (list, tuple)) else members
    if not isinstance(members, list) or len(members) < 2:
        raise ValueError(
            f"`members` must be a list of at least 2 Keras models. Received: members={members!r}"
        )
    for i, member in enumerate(members):
        if not isinstance(member, keras.Model) or not member.built:
            raise ValueError(
                f"`members[{i}]` must be a built Keras model. Received: members[{i}]={member!r}"
            )
        if len(member.inputs) != 1 or len(member.outputs) != 1:
            raise ValueError(
                f"`members[{i}]` must have one input and one output; it has "
                f"{len(member.inputs)} and {len(member.outputs)}."
            )
        if any(member is other for other in members[:i]):
            raise ValueError(f"`members` must be distinct models; members[{i}] repeats an earlier one.")
        if member.input_shape != members[0].input_shape or member.output_shape != members[0].output_shape:
            raise ValueError(
                "`members` must have equal input and output shapes: members[0] maps "
                f"{members[0].input_shape} -> {members[0].output_shape}, members[{i}] maps "
                f"{member.input_shape} -> {member.output_shape}."
            )
    inputs = keras.Input(members[0].input_shape[1:], name=f"{name}_input")
    probabilities = []
    for i, member in enumerate(members):
        member_input = keras.Input(member.input_shape[1:])
        wrapped = keras.Model(member_input, member(member_input), name=f"{name}_member_{i}")
        y = wrapped(inputs)
        probabilities.append(keras.layers.Softmax(name=f"{name}_softmax_{i}")(y) if from_logits else y)
    outputs = keras.layers.Average(name=f"{name}_average")(probabilities)
    return keras.Model(inputs, outputs, name=name)

