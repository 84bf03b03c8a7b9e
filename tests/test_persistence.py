import json
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch

import skvqad._model_file as _model_file
import skvqad.persistence as persistence
from skvqad import VQVAEAnomalyDetector
from skvqad.net import cpu_has_native_bf16


@pytest.fixture
def fitted(stripes, tiny_params):
    return VQVAEAnomalyDetector(**tiny_params, contamination=0.1, dilation_radius=1).fit(stripes)


def test_save_load_round_trip(fitted, stripes, tmp_path):
    path = tmp_path / "model.skvqad"
    fitted.save(path)
    loaded = VQVAEAnomalyDetector.load(path)
    np.testing.assert_array_equal(loaded.score_samples(stripes), fitted.score_samples(stripes))
    np.testing.assert_array_equal(loaded.anomaly_map(stripes[:3]), fitted.anomaly_map(stripes[:3]))
    np.testing.assert_array_equal(loaded.predict(stripes), fitted.predict(stripes))
    assert loaded.get_params() == fitted.get_params()
    assert loaded.offset_ == fitted.offset_ and loaded.image_shape_ == fitted.image_shape_
    assert loaded.history_[:, "train_nll"] == fitted.history_[:, "train_nll"]
    assert [p.name for p in tmp_path.iterdir()] == ["model.skvqad"]  # no temp file left


def test_round_trip_keeps_the_scoring_parameters(fitted, stripes, tmp_path):
    fitted.set_params(alignment="bank", ssim_constants=(0.01, 0.03), score_pooling=0.9)
    fitted.save(tmp_path / "m")
    loaded = VQVAEAnomalyDetector.load(tmp_path / "m")
    assert loaded.get_params() == fitted.get_params()
    assert loaded.ssim_constants == (0.01, 0.03)  # a tuple again, not JSON's list
    np.testing.assert_array_equal(loaded.bank_, fitted.bank_)
    np.testing.assert_array_equal(loaded.score_samples(stripes), fitted.score_samples(stripes))


def test_tabular_round_trip(tiny_params, tmp_path):
    X = np.random.default_rng(0).normal(5, 2, size=(30, 7))
    det = VQVAEAnomalyDetector(**tiny_params).fit(X)
    det.save(tmp_path / "m")
    np.testing.assert_array_equal(VQVAEAnomalyDetector.load(tmp_path / "m").score_samples(X),
                                  det.score_samples(X))


def test_persistence_functions_and_subclasses(fitted, stripes, tmp_path):
    """save_detector/load_detector equal the methods; Subclass.load returns the subclass."""

    class Tuned(VQVAEAnomalyDetector):
        pass

    path = tmp_path / "model.skvqad"
    persistence.save_detector(fitted, path)
    loaded = persistence.load_detector(path, device="cpu")
    assert type(loaded) is VQVAEAnomalyDetector
    np.testing.assert_array_equal(loaded.score_samples(stripes), fitted.score_samples(stripes))
    sub = Tuned.load(path)
    assert type(sub) is Tuned
    np.testing.assert_array_equal(sub.score_samples(stripes), fitted.score_samples(stripes))


def test_loading_runs_no_pickle(fitted, tmp_path, monkeypatch):
    path = tmp_path / "model.skvqad"
    fitted.save(path)
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real_load(*a, **k))
    VQVAEAnomalyDetector.load(path)
    assert calls and all(k.get("weights_only") is True for k in calls)


def test_a_pickle_payload_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.skvqad"
    torch.save({"format": _model_file.FORMAT, "x": Evil()}, path)
    with pytest.raises(ValueError, match="not a readable skvqad model file"):
        VQVAEAnomalyDetector.load(path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_files_fail_clearly(fitted, tmp_path, damage):
    path = tmp_path / "model.skvqad"
    fitted.save(path)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00" * 100, "empty": b""}[damage])
    with pytest.raises(ValueError, match="is damaged|not a readable skvqad model file"):
        VQVAEAnomalyDetector.load(path)


def test_other_files_fail_clearly(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt is not a readable skvqad model file"):
        VQVAEAnomalyDetector.load(tmp_path / "other.pt")


def test_every_changed_byte_is_detected(fitted, tmp_path):
    path = tmp_path / "model.skvqad"
    fitted.save(path)
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    # The signature, the digest, the payload's zip headers and its tensors.
    positions = sorted({*range(0, 48), *rng.integers(48, len(data), size=150).tolist()})
    for pos in positions:
        damaged = bytearray(data)
        damaged[pos] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match="model.skvqad"):
            VQVAEAnomalyDetector.load(path)


def rewrite(path, change):
    """Re-write a model file after ``change(payload)``, with a valid digest."""
    import hashlib
    import io

    payload = _model_file._read_payload(path)
    change(payload)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    path.write_bytes(_model_file.SIGNATURE + hashlib.sha256(body).digest() + body)


def set_param(name, value):
    def change(payload):
        params = json.loads(payload["params"])
        params[name] = value
        payload["params"] = json.dumps(params)
    return change


def set_fitted(name, value):
    def change(payload):
        if value is KeyError:
            del payload["fitted"][name]
        else:
            payload["fitted"][name] = value
    return change


@pytest.mark.parametrize("change, match", [
    (set_param("batch_size", 0), "'batch_size' parameter"),
    (set_param("dilation_radius", -3), "'dilation_radius' parameter"),
    (set_param("n_embeddings", "8"), "'n_embeddings' parameter"),
    (set_param("ssim_window", 4), "ssim_window must be a positive odd int"),
    (set_param("score_map", "l2"), "'score_map' parameter"),
    (lambda p: p.update(params=json.dumps([1, 2])), "incomplete"),
    (lambda p: p.update(fitted=[1.0]), "incomplete"),
    (set_fitted("offset_", KeyError), "incomplete.*offset_"),
    (set_fitted("offset_", float("nan")), "offset_=nan"),
    (set_fitted("image_shape_", [16, 16]), "image_shape_"),
    (set_fitted("n_features_in_", 3), "n_features_in_=3"),
    (set_fitted("n_downsampling_", 0), "n_downsampling_=0"),
    (lambda p: p["state_dict"]["codebook.weight"].__setitem__((0, 0), float("inf")),
     "'codebook.weight' is not a finite tensor"),
    (lambda p: p["fitted"]["bank_"].__setitem__((0, 0), float("nan")), "bank_ is not a finite"),
    (set_fitted("bank_", torch.zeros(3, 5)), "bank_ is not a finite"),
    (set_fitted("integer_bits_", 12), "integer_bits_ is 12"),
    (set_fitted("integer_bits_", 8.0), "integer_bits_ is 8.0"),
    (set_fitted("integer_bits_", torch.tensor(8)), "integer_bits_ is tensor"),
    (set_param("score_map", ["am", "l2"]), "score_map must be"),
    (set_fitted("code_counts_", torch.zeros(4, 4, 3, dtype=torch.int64)), "code_counts_ is not"),
    (lambda p: p["fitted"]["code_counts_"].__setitem__((0, 0, 0), -1), "code_counts_ is not"),
    (lambda p: p["fitted"]["code_counts_"].__setitem__((0, 0, 0), 10**6), "code_counts_ is not"),
    (set_fitted("code_counts_", torch.zeros(4, 4, 8)), "code_counts_ is not"),
    (set_fitted("score_calibration", "{"), "incomplete"),
    (set_fitted("score_calibration", json.dumps({"maps": {"am": [float("nan"), 1.0]},
                                                 "params": {}})), "score calibration"),
])
def test_stored_values_pass_the_checks_of_fit(fitted, tmp_path, change, match):
    path = tmp_path / "model.skvqad"
    fitted.save(path)
    rewrite(path, change)
    with pytest.raises(ValueError, match=match) as info:
        VQVAEAnomalyDetector.load(path)
    assert "model.skvqad" in str(info.value)


def test_a_stored_memory_path_is_not_used_silently(fitted, stripes, tmp_path):
    fitted.set_params(memory=str(tmp_path / "cache"))
    fitted.save(tmp_path / "m")
    with pytest.warns(UserWarning, match="memory=None"):
        loaded = VQVAEAnomalyDetector.load(tmp_path / "m")
    assert loaded.memory is None
    np.testing.assert_array_equal(loaded.score_samples(stripes), fitted.score_samples(stripes))


def test_other_version_loads_with_a_warning(fitted, stripes, tmp_path, monkeypatch):
    monkeypatch.setattr(_model_file, "__version__", "0.0.1")
    fitted.save(tmp_path / "old")
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="written by skvqad 0.0.1"):
        loaded = VQVAEAnomalyDetector.load(tmp_path / "old")
    np.testing.assert_array_equal(loaded.score_samples(stripes), fitted.score_samples(stripes))


def test_failed_write_leaves_previous_file_intact(fitted, tmp_path, monkeypatch):
    path = tmp_path / "model.skvqad"
    fitted.save(path)
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        fitted.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.skvqad"]


def test_unsaved_params_warn_and_come_back_as_defaults(stripes, tiny_params, tmp_path):
    from skorch.callbacks import EpochTimer

    class MyAdam(torch.optim.Adam):
        pass

    det = VQVAEAnomalyDetector(**tiny_params, callbacks=[EpochTimer()], optimizer=MyAdam).fit(stripes)
    with pytest.warns(UserWarning, match="callbacks are not saved"):
        det.save(tmp_path / "m")
    with pytest.warns(UserWarning, match="not in torch.optim"):
        loaded = VQVAEAnomalyDetector.load(tmp_path / "m")
    assert loaded.callbacks is None and loaded.optimizer is torch.optim.Adam
    np.testing.assert_array_equal(loaded.score_samples(stripes), det.score_samples(stripes))


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a machine without CUDA")
def test_cuda_saved_model_loads_on_cpu(fitted, stripes, tmp_path):
    fitted.set_params(device="cuda")  # as if trained with device="cuda"
    fitted.save(tmp_path / "m")
    with pytest.warns(UserWarning, match="CUDA is not available"):
        loaded = VQVAEAnomalyDetector.load(tmp_path / "m")
    assert loaded.device == "cpu" and loaded.net_.device == "cpu"
    np.testing.assert_array_equal(loaded.score_samples(stripes), fitted.score_samples(stripes))


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a machine without CUDA")
def test_cuda_trained_pickle_unpickles_on_cpu(fitted, stripes, tmp_path):
    """A CUDA-trained pickle names device 'cuda'; skorch maps it to the CPU on load."""
    ref = fitted.score_samples(stripes)
    fitted.net_.device = "cuda"  # the state a CUDA-trained net is pickled in
    fitted.set_params(device="cuda", mixed_precision="auto")
    joblib.dump(fitted, tmp_path / "m.joblib")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch's DeviceWarning
        loaded = joblib.load(tmp_path / "m.joblib")
    assert str(loaded.net_.device) == "cpu"
    # bf16="auto" follows the device: this CPU's choice, not CUDA's.
    assert loaded.net_.bf16_enabled == cpu_has_native_bf16()
    np.testing.assert_array_equal(loaded.score_samples(stripes), ref)


def test_numpy_scalar_params_from_a_search_are_saved(stripes, tiny_params, tmp_path):
    tiny_params.update(n_embeddings=np.int64(8), random_state=np.int64(0), lr=np.float32(1e-3))
    det = VQVAEAnomalyDetector(**tiny_params).fit(stripes)
    det.save(tmp_path / "m")
    loaded = VQVAEAnomalyDetector.load(tmp_path / "m")
    assert loaded.n_embeddings == 8 and loaded.random_state == 0
    np.testing.assert_array_equal(loaded.score_samples(stripes), det.score_samples(stripes))


def test_unknown_params_from_a_newer_version_are_ignored(fitted, stripes, tmp_path, monkeypatch):
    real = _model_file._params_to_json
    monkeypatch.setattr(_model_file, "_params_to_json",
                        lambda det: real(det)[:-1] + ', "future_option": 3}')
    fitted.save(tmp_path / "m")
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="future_option"):
        loaded = VQVAEAnomalyDetector.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score_samples(stripes), fitted.score_samples(stripes))


def test_files_without_integer_bits_load_with_the_old_rule(fitted, stripes, tmp_path):
    """Files written before integer_bits_ existed read integers by their values."""
    path = tmp_path / "model.skvqad"
    fitted.save(path)
    rewrite(path, set_fitted("integer_bits_", KeyError))
    loaded = VQVAEAnomalyDetector.load(path)
    assert loaded.integer_bits_ is None
    X8 = np.round(stripes * 255).astype(np.int64)
    np.testing.assert_array_equal(loaded.score_samples(X8), fitted.score_samples(X8.astype(np.uint8)))


def test_files_without_the_code_prior_load_and_say_what_is_missing(fitted, stripes, tmp_path):
    path = tmp_path / "old.skvqad"
    fitted.save(path)
    rewrite(path, lambda p: [p["fitted"].pop(k) for k in ("code_counts_", "score_calibration")])
    old = VQVAEAnomalyDetector.load(path)
    np.testing.assert_array_equal(old.score_samples(stripes), fitted.score_samples(stripes))
    with pytest.raises(ValueError, match="code_counts_"):
        old.set_params(score_map="prior").score_samples(stripes)


def test_saving_into_a_missing_folder_names_the_folder(fitted, tmp_path):
    target = tmp_path / "missing" / "model.skvqad"
    with pytest.raises(FileNotFoundError, match=r"missing does not exist") as info:
        fitted.save(target)
    assert ".tmp" not in str(info.value)


def test_a_pickle_whose_tensors_are_tagged_cuda_loads_without_cuda(fitted, stripes, monkeypatch):
    """What a CUDA-fitted detector's pickle holds: every storage tagged with a CUDA location.

    skorch maps its own modules to the CPU on load; anything else that holds a raw device
    tensor (the bank and the codebook-usage counts did) fails without CUDA.
    """
    import joblib

    def as_cuda(storage):
        return "cuda:0"

    registry = torch.serialization._package_registry
    monkeypatch.setattr(torch.serialization, "_package_registry", list(registry))
    torch.serialization.register_package(-100, as_cuda, lambda obj, location: None)
    data = pickle.dumps(fitted)
    monkeypatch.setattr(torch.serialization, "_package_registry", registry)
    assert b"cuda:0" in data
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = pickle.loads(data)
    np.testing.assert_array_equal(loaded.score_samples(stripes), fitted.score_samples(stripes))
    assert joblib.hash(loaded.bank_) == joblib.hash(fitted.bank_)
