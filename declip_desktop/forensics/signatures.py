"""Known generator and editor signatures (data only), matched against metadata text.

Each entry: (name, kind, pattern). `kind` is "generator" (makes images from noise or
prompts) or "editor" (changes existing pictures; includes raw developers, whose edits
are usually global tone work, not content changes). Patterns are case-insensitive
regular expressions over one metadata value.
"""

from __future__ import annotations

import re

SIGNATURES: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (name, kind, re.compile(pattern, re.IGNORECASE)) for name, kind, pattern in (
        ("Stable Diffusion (AUTOMATIC1111 / Forge)", "generator", r"\bsteps:\s*\d+,\s*sampler:"),
        ("Stable Diffusion", "generator", r"stable[\s_-]?diffusion|\bsdxl\b|\bsd[\s_-]?1\.5\b"),
        ("ComfyUI", "generator", r"comfyui|\"class_type\"\s*:"),
        ("InvokeAI", "generator", r"invokeai"),
        ("NovelAI", "generator", r"novelai"),
        ("Midjourney", "generator", r"midjourney|\bjob id:\s*[0-9a-f-]{16,}"),
        ("DALL·E", "generator", r"dall[·\-\s]?e"),
        ("OpenAI image generation", "generator", r"\bopenai\b|chatgpt|gpt-4o|gpt-image"),
        ("Adobe Firefly", "generator", r"firefly"),
        ("Google generative AI", "generator", r"imagen|made with google ai|gemini"),
        ("Flux", "generator", r"\bflux(\.1)?[\s_-]?(dev|schnell|pro)\b"),
        ("Leonardo.Ai", "generator", r"leonardo\.ai"),
        ("Ideogram", "generator", r"ideogram"),
        ("IPTC digital source type: trained algorithmic media", "generator",
         r"digitalsourcetype/(trainedAlgorithmicMedia|compositeWithTrainedAlgorithmicMedia|compositeSynthetic)"),
        ("Adobe Photoshop", "editor", r"photoshop"),
        ("Adobe Lightroom", "editor", r"lightroom"),
        ("Adobe Camera Raw", "editor", r"camera raw"),
        ("GIMP", "editor", r"\bgimp\b"),
        ("Snapseed", "editor", r"snapseed"),
        ("Affinity Photo", "editor", r"affinity photo"),
        ("Pixelmator", "editor", r"pixelmator"),
        ("Paint.NET", "editor", r"paint\.net"),
        ("Photopea", "editor", r"photopea"),
        ("Canva", "editor", r"\bcanva\b"),
        ("Picsart", "editor", r"picsart"),
        ("Facetune", "editor", r"facetune"),
        ("Luminar", "editor", r"luminar"),
        ("Capture One", "editor", r"capture one"),
        ("darktable", "editor", r"darktable"),
        ("RawTherapee", "editor", r"rawtherapee"),
        ("Corel PaintShop", "editor", r"paintshop|corel"),
        ("ACDSee", "editor", r"acdsee"),
        ("Krita", "editor", r"\bkrita\b"),
    )
)


def match_signatures(value: str) -> list[tuple[str, str]]:
    """[(name, kind)] of every signature found in `value` (first 20 000 characters)."""
    text = value[:20000]
    return [(name, kind) for name, kind, pattern in SIGNATURES if pattern.search(text)]
