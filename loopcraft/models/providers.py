"""The providers litellm knows, as a list generated from the installed litellm, so a model string
is checked without importing litellm (it takes seconds). Regenerate after upgrading litellm:

    .venv/bin/python -m loopcraft.models.providers

``tests/unit/test_models_providers.py`` fails when this list drifts from ``litellm.provider_list``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# loopcraft's own providers on top of litellm's: the offline scripted model, and any
# OpenAI-compatible server at an ``api_base`` (sent to litellm as ``openai``).
OWN_PROVIDERS = frozenset({"scripted", "openai_compatible"})

# BEGIN GENERATED: litellm.provider_list (litellm 1.106.12)
LITELLM_VERSION = "1.106.12"
LITELLM_PROVIDERS: frozenset[str] = frozenset(
    {
        "a2a",
        "a2a_agent",
        "ai21",
        "ai21_chat",
        "aiml",
        "aiohttp_openai",
        "amazon_nova",
        "anthropic",
        "anthropic_text",
        "apertis",
        "assemblyai",
        "auto_router",
        "aws_polly",
        "aws_textract",
        "azure",
        "azure_ai",
        "azure_speech",
        "azure_text",
        "baseten",
        "bedrock",
        "bedrock_mantle",
        "black_forest_labs",
        "bytez",
        "cerebras",
        "charity_engine",
        "chatgpt",
        "chutes",
        "clarifai",
        "cloudflare",
        "codestral",
        "cognition",
        "cohere",
        "cohere_chat",
        "cometapi",
        "compactifai",
        "cortecs",
        "cursor",
        "custom",
        "custom_openai",
        "darkbloom",
        "dashscope",
        "databricks",
        "datarobot",
        "deepgram",
        "deepinfra",
        "deepseek",
        "docker_model_runner",
        "dotprompt",
        "edenai",
        "elevenlabs",
        "empower",
        "fal_ai",
        "featherless_ai",
        "fireworks_ai",
        "friendliai",
        "galadriel",
        "gdc",
        "gemini",
        "gigachat",
        "github",
        "github_copilot",
        "gradient_ai",
        "groq",
        "helicone",
        "heroku",
        "hosted_vllm",
        "huggingface",
        "humanloop",
        "hyperbolic",
        "inception",
        "infinity",
        "jina_ai",
        "lambda_ai",
        "langflow",
        "langfuse",
        "langgraph",
        "lemonade",
        "libertai",
        "litellm_agent",
        "litellm_proxy",
        "llamafile",
        "lm_studio",
        "manus",
        "maritalk",
        "meta",
        "meta_llama",
        "milvus",
        "minimax",
        "mistral",
        "modelscope",
        "mongodb",
        "moonshot",
        "morph",
        "nadir",
        "nano-gpt",
        "nebius",
        "neosantara",
        "nlp_cloud",
        "novita",
        "nscale",
        "nvidia_nim",
        "nvidia_riva",
        "oci",
        "ollama",
        "ollama_chat",
        "oobabooga",
        "openai",
        "openai_like",
        "openrouter",
        "ovhcloud",
        "parasail",
        "perplexity",
        "petals",
        "pg_vector",
        "pinstripes",
        "poe",
        "predibase",
        "prism",
        "publicai",
        "qwen_ai_platform",
        "qwencloud",
        "ragflow",
        "recraft",
        "reducto",
        "reka",
        "replicate",
        "runwayml",
        "s3_vectors",
        "sagemaker",
        "sagemaker_chat",
        "sagemaker_nova",
        "sail",
        "sambanova",
        "sap",
        "scaleway",
        "scx-ai",
        "snowflake",
        "soniox",
        "stability",
        "strands_decider",
        "synthetic",
        "tencent",
        "tensormesh",
        "text-completion-codestral",
        "text-completion-inception",
        "text-completion-openai",
        "together_ai",
        "topaz",
        "transcribe",
        "triton",
        "typesafe",
        "v0",
        "valkey",
        "vercel_ai_gateway",
        "vertex_ai",
        "vertex_ai_beta",
        "vllm",
        "volcengine",
        "voyage",
        "wandb",
        "watsonx",
        "watsonx_text",
        "xai",
        "xiaomi_mimo",
        "xinference",
        "zai",
    }
)
# END GENERATED

KNOWN_PROVIDERS = LITELLM_PROVIDERS | OWN_PROVIDERS


def installed_providers() -> tuple[str, frozenset[str]]:
    """The installed litellm's version and provider names (imports litellm)."""
    from importlib.metadata import version

    from loopcraft.models.litellm_loader import load_litellm

    litellm = load_litellm()
    custom = {str(item.get("provider")) for item in litellm.custom_provider_map}  # ours, registered at load
    names = frozenset(str(getattr(p, "value", p)) for p in litellm.provider_list) - custom
    return version("litellm"), names


def render(litellm_version: str, names: frozenset[str]) -> str:
    """The generated block for ``names``."""
    lines = [f"# BEGIN GENERATED: litellm.provider_list (litellm {litellm_version})"]
    lines.append(f'LITELLM_VERSION = "{litellm_version}"')
    lines.append("LITELLM_PROVIDERS: frozenset[str] = frozenset(")
    lines.append("    {")
    lines.extend(f'        "{name}",' for name in sorted(names))
    lines.append("    }")
    lines.append(")")
    lines.append("# END GENERATED")
    return "\n".join(lines)


def regenerate(path: Path = Path(__file__)) -> None:
    """Rewrite this module's generated block from the installed litellm."""
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition("# BEGIN GENERATED")
    _, _, tail = rest.partition("# END GENERATED")
    path.write_text(head + render(*installed_providers()) + tail, encoding="utf-8")


if __name__ == "__main__":
    regenerate()
    sys.exit(0)
