"""Golden outputs of a seeded tiny VLA: catch silent changes to the network, sampling or normalisation.

After an intended change, regenerate with:

    python tests/test_vla_golden.py --regenerate

and say in the commit why the numbers moved.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from vla_fixtures import STATS, TINY, synthetic_batch

from egosim.policies.vla.model import VLAModel
from egosim.policies.vla.train import normalize_batch, step_noise

GOLDEN = Path(__file__).parent / "golden" / "vla_tiny.json"


def compute() -> dict[str, list]:
    torch.manual_seed(123)
    model = VLAModel(TINY).eval()
    batch = normalize_batch(synthetic_batch(TINY, ["human", "sharpa_wave", "unitree_dex3"], seed=9, pad_steps=1),
                            STATS, TINY)
    noise, tau = step_noise(TINY, seed=1, step=2, shape=tuple(batch["action"].shape))
    with torch.no_grad():
        loss = model.loss(batch, noise, tau)
    chunk = model.sample(batch, torch.Generator().manual_seed(5))
    return {"loss": [float(loss)], "tau": tau.tolist(), "chunk_row0": chunk[:, 0, :8].flatten().tolist(),
            "chunk_sum": [float(chunk.double().sum())]}


def test_golden_outputs() -> None:
    want = json.loads(GOLDEN.read_text())
    got = compute()
    assert want.keys() == got.keys()
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-5, err_msg=key)


if __name__ == "__main__":
    if "--regenerate" not in sys.argv:
        sys.exit("usage: python tests/test_vla_golden.py --regenerate")
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(compute(), indent=1) + "\n")
    print(f"wrote {GOLDEN}")
