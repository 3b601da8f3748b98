"""Providers come from litellm's own list: the generated module matches the installed litellm."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loopcraft.models import providers
from loopcraft.models.providers import KNOWN_PROVIDERS, LITELLM_PROVIDERS, installed_providers


def test_generated_list_matches_the_installed_litellm() -> None:
    version, names = installed_providers()
    missing, extra = sorted(names - LITELLM_PROVIDERS), sorted(LITELLM_PROVIDERS - names)
    assert not missing and not extra, (
        f"loopcraft/models/providers.py was generated from litellm {providers.LITELLM_VERSION}, "
        f"installed is {version} (missing {missing}, gone {extra}): "
        "run .venv/bin/python -m loopcraft.models.providers"
    )
    assert version == providers.LITELLM_VERSION


def test_the_generated_block_renders_back_to_itself() -> None:
    text = Path(providers.__file__).read_text(encoding="utf-8")
    assert providers.render(providers.LITELLM_VERSION, LITELLM_PROVIDERS) in text


def test_litellm_providers_and_ours_are_known() -> None:
    assert {"nvidia_nim", "litellm_proxy", "dashscope", "ollama", "openai"} <= KNOWN_PROVIDERS
    assert {"scripted", "openai_compatible"} <= KNOWN_PROVIDERS
    assert len(LITELLM_PROVIDERS) > 100


def test_parsing_a_model_string_does_not_import_litellm() -> None:
    code = (
        "import sys; from loopcraft.models.spec import parse_model; "
        "parse_model('nvidia_nim/meta/llama3-70b-instruct'); print('litellm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
