"""The final picture stays the same, pixel for pixel, for the same prompt, seed and size.

The hashes below are of the finals' decoded RGB pixels as the provider drew
them before its previews moved to preview size and its renderer was sped up:
how previews are made, and how fast, must never change the picture a seed
gives. They were recorded with Pillow 13.0; another Pillow major version may
rasterise a polygon a pixel differently, so the test is skipped there.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import PIL
import pytest
from PIL import Image

import imagestream
from imagestream import ImageFinal, Pipeline
from imagestream_procedural import ProceduralProvider

RECORDED_WITH_PILLOW = 13

# prompt, seed, size, steps, n -> sha256 of each final's RGB pixels
REFERENCE: list[tuple[str, int, str, int, int, list[str]]] = [
    (
        "a simple red circle",
        1,
        "64x64",
        4,
        1,
        ["35f5090c5dc1dd556e58f616f2995c8335178dae0cd31977a58d758c49c380fa"],
    ),
    (
        "a blue square on yellow",
        7,
        "768x512",
        20,
        1,
        ["ee71f26e7b58a1f3c114761ad8d5914063d549acbb3d7fbada98e00276088efb"],
    ),
    (
        "two green triangles",
        123,
        "512x512",
        20,
        2,
        [
            "feb4222dcbbbc6e6b26545e2599b4481f8d184b51067992ee333d8732f61718e",
            "da4d68a2e7ee0ffca06253911e0e03bd29c83ea2906a79c476dee35f2cca10ce",
        ],
    ),
    (
        "a small dark blue star on light grey",
        42,
        "300x200",
        5,
        1,
        ["8ad6cdcb3c6c976730bae74a2bc056349e4284488d7f703fc008b8176af3e99d"],
    ),
    (
        "a lighthouse at dusk",
        1,
        "512x512",
        20,
        1,
        ["a1c6068f6d357a4fe479ce9987c274c14211b1a274f027ba91eda4e167e62e98"],
    ),
    (
        "a lighthouse at dusk",
        2,
        "2048x2048",
        20,
        1,
        ["35ab74fbe96034408e2023d99c70acb60599667d2698ab8ececf2e4878c98412"],
    ),
    (
        "neon city in the rain, cinematic",
        99,
        "1024x768",
        12,
        1,
        ["f6fa8d95f5a76dedff1290a7dc983d7386d0d297b4a0429ec6edc2256ba1bbd2"],
    ),
    (
        "an abstract storm",
        2**32 - 1,
        "17x4096",
        3,
        1,
        ["6062c1507276ba9fa89d16343deb7b51018ccbb2a095a1fb678d5dbea71dcf17"],
    ),
    # Abstract art at small sizes: every layer of the drawing, for a spread of palettes.
    (
        "sunrise over misty mountains",
        3,
        "96x64",
        2,
        1,
        [
            "431653578bf00248a95c6ea1860acfa8105a0619f30d8891a86a1868a8858c29",
        ],
    ),
    (
        "a quiet blue ocean at night",
        11,
        "80x80",
        2,
        1,
        [
            "d97a68eea549fecb0c206b834d3b5acae5920e836f0886d46ed8f7f236eb62aa",
        ],
    ),
    (
        "warm autumn forest path",
        5,
        "64x128",
        2,
        1,
        [
            "87029cc55c469ea79b06ada2386e0b35ee6993f959dee956172dcf248c86557f",
        ],
    ),
    (
        "stained glass cathedral",
        8,
        "128x96",
        2,
        1,
        [
            "be2145935e0c0150d0f49543de1cd29b699e187e28edd4f2dffdf6fd711bcca2",
        ],
    ),
    (
        "dark cyberpunk alley, red neon",
        21,
        "100x60",
        2,
        1,
        [
            "32702026febd1bd018e8717fc887d8c8690cf8adbaf329266c19b25cd4fc8466",
        ],
    ),
    (
        "pastel candy clouds",
        34,
        "72x72",
        2,
        1,
        [
            "2670f90b69542caa4b26bc6387f9686e4ec56dae805e20e97e1c603417a1dc8a",
        ],
    ),
    (
        "golden desert dunes",
        55,
        "90x120",
        2,
        1,
        [
            "15606a7807450e2cc14c3861ba880a068f74da7efa428a7eafe41e3e6cb629b7",
        ],
    ),
    (
        "emerald jungle waterfall",
        89,
        "64x64",
        2,
        3,
        [
            "ba05619edd66d680b0ccdf064f46f96093f3e6dfe1d3bd5934ca5e0f4fc8512a",
            "2694590cf71756340ae85b9b522e5af263bed7748680f3caf27e1da26c01cfb4",
            "9169461f365067d4d492e0a412f5bafd9345eacfd3c89392170724616574c2c5",
        ],
    ),
]


def _pixels_hash(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        return hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()


async def _finals(prompt: str, **params: Any) -> list[str]:
    pipe = Pipeline(ProceduralProvider(), middleware=[imagestream.Validation()])
    return [
        _pixels_hash(chunk.image.data)
        async for chunk in pipe.stream(prompt, **params)
        if isinstance(chunk, ImageFinal)
    ]


@pytest.mark.skipif(
    int(PIL.__version__.split(".")[0]) != RECORDED_WITH_PILLOW,
    reason=f"reference pixels recorded with Pillow {RECORDED_WITH_PILLOW}",
)
@pytest.mark.parametrize(
    ("prompt", "seed", "size", "steps", "n", "expected"),
    REFERENCE,
    ids=[f"{case[0][:20]}-{case[2]}" for case in REFERENCE],
)
async def test_the_final_is_the_picture_it_always_was(
    prompt: str, seed: int, size: str, steps: int, n: int, expected: list[str]
) -> None:
    assert await _finals(prompt, seed=seed, size=size, steps=steps, n=n) == expected
