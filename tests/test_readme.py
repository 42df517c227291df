"""Every ```python block of README.md runs as written, and what it computes is checked.

Each block runs verbatim (``exec``) in a new folder, in a namespace that holds the names the
README leaves to the reader: ``module`` (a small CNN taking 1x3x224x224), ``gpt`` (the zoo's
GPT-style decoder), ``model``/``pytorch_model`` (the predecessor's MLP 784-256-10) and ``x``
(its 1x784 input); the folder holds the ``model.onnx`` the API block opens (the small CNN,
input ``x``). After a block has run, its results are compared with torch or onnxruntime.
A new block without a check here fails the suite.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import assert_matches, ort_run  # noqa: E402
from torch import nn  # noqa: E402

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def _namespace(folder: Path) -> dict:
    from export import to_onnx
    from models import ZOO

    cnn = SmallCNN().eval()
    to_onnx(cnn, (torch.randn(1, 3, 224, 224),), folder / "model.onnx", input_names=["x"])
    torch.manual_seed(1)
    mlp = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)).eval()
    return {"module": cnn, "gpt": ZOO["gpt"]()[0], "model": mlp, "pytorch_model": mlp,
            "x": np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)}


def _check_api(ns, given, folder):
    (want,) = ort_run((folder / "model.onnx").read_bytes(), {"x": ns["x"]})
    assert_matches(ns["y"].numpy() if hasattr(ns["y"], "numpy") else ns["y"], want, "model(x)")


def _check_torch(ns, given, folder):
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert_matches(ns["model"](x).numpy(), given["module"](x).numpy(), "from_torch(module)")
        ids = torch.randint(0, 128, (1, 16), generator=torch.Generator().manual_seed(3))
        assert_matches(ns["ids_model"](ids).numpy(), given["gpt"](ids).numpy(), "from_torch(gpt)")
        # the export with symbolic axes runs other sizes in onnxruntime
        import onnx

        path = folder / "gpt.onnx"
        dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
        assert [d.dim_param for d in dims] == ["batch", "seq"]
        ids = torch.randint(0, 128, (3, 5), generator=torch.Generator().manual_seed(4))
        (want,) = ort_run(str(path), {onnx.load(str(path)).graph.input[0].name: ids.numpy()})
        assert_matches(want, given["gpt"](ids).numpy(), "to_onnx(gpt, dynamic=...) in onnxruntime")


def _check_predecessor(ns, given, folder):
    mlp, x = given["model"], given["x"]
    with torch.no_grad():
        want = mlp(torch.from_numpy(x)).numpy()
        (got,) = ns["result"]
        assert_matches(got.to_numpy(), want, "execute(Buffer)")
        xb = np.random.default_rng(1).standard_normal((32, 784)).astype(np.float32)
        (got32,) = ns["max_model"].execute(xb)
        assert_matches(got32.to_numpy(), mlp(torch.from_numpy(xb)).numpy(), "convert_model, batch 32")


#: the check of each block, in README order; the group is the xdist group whose compiles share
#: kernels and cached graphs with the block's (see conftest)
CHECKS = [("test_zoo", _check_api), ("test_zoo", _check_torch), ("test_predecessor", _check_predecessor)]


def test_every_block_has_a_check():
    assert len(BLOCKS) == len(CHECKS), (
        f"README.md has {len(BLOCKS)} python blocks and tests/test_readme.py checks {len(CHECKS)}: "
        "give the new block a check")


@pytest.mark.parametrize("index, group", [(i, g) for i, (g, _) in enumerate(CHECKS)])
def test_readme_block_runs_as_written(index, group, tmp_path, monkeypatch):
    if index >= len(BLOCKS):
        pytest.fail(f"README.md has no python block {index}")
    monkeypatch.chdir(tmp_path)
    given = _namespace(tmp_path)
    ns = dict(given)
    exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), ns)
    CHECKS[index][1](ns, given, tmp_path)
