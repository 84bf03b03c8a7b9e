"""The README's Python code blocks run as pasted (issue #28)."""

import re
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_readme_python_blocks_run_as_pasted(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 2, "the README lost its quickstart"
    monkeypatch.chdir(tmp_path)  # the blocks write a cache folder and a model file
    namespace = {"__name__": "__readme__"}
    for block in blocks:  # one namespace: later blocks use the quickstart's names
        exec(compile(block, str(README), "exec"), namespace)
    # What the quickstart shows holds: a detector that separates the zeros.
    assert roc_auc_score(namespace["is_normal"], namespace["scores"]) > 0.9
    assert namespace["maps"].shape == (len(namespace["X_test"]), 8, 8)
    assert set(np.unique(namespace["labels"])) <= {-1, 1}
    assert set(namespace["search"].best_params_) == {"n_embeddings", "dilation_radius"}
    loaded = namespace["detector"]
    np.testing.assert_allclose(loaded.score_samples(namespace["X_test"]), namespace["scores"])
    assert "image AUROC" in capsys.readouterr().out
