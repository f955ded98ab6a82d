"""The kit's URL builder keeps what the base URL carries."""

from __future__ import annotations

from imagestream.provider import api_url


def test_a_base_urls_own_query_and_path_are_kept() -> None:
    assert api_url("http://h:1/?token=t", "/view", filename="a b.png") == (
        "http://h:1/view?token=t&filename=a+b.png"
    )
    assert (
        api_url("https://proxy.example/comfy/", "/prompt") == "https://proxy.example/comfy/prompt"
    )
