"""The generated configuration reference lists every ``c.WidgetRelay.*`` option."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from traitlets import Int, Unicode

from jupyter_widget_relay.app import WidgetRelay

GENERATOR = Path(__file__).resolve().parents[1] / "docs" / "_ext" / "widget_relay_config.py"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("widget_relay_config", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def section_of(text: str, name: str) -> str:
    """The generated section of one relay option (up to the next heading)."""
    start = text.index(f"## `{name}`")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def test_every_config_trait_appears() -> None:
    generator = load_generator()
    text = generator.render_config_reference()
    traits = WidgetRelay.class_traits(config=True)
    assert traits
    missing = [name for name in traits if f"`{name}`" not in text]
    assert not missing, f"options missing from the reference: {missing}"
    own = generator.relay_traits(WidgetRelay)
    assert set(WidgetRelay.class_own_traits(config=True)) <= set(own)
    for name, trait in own.items():
        section = section_of(text, name)
        assert f"(config-WidgetRelay-{name})=" in text
        assert f"`{type(trait).__name__}`" in section
        assert f"c.WidgetRelay.{name} = " in section
        first_words = " ".join(trait.help.split()[:3])
        assert generator._escape(first_words) in section, f"{name}: help text missing"


def test_new_traits_appear_without_touching_the_docs() -> None:
    class Extended(WidgetRelay):
        brand_new_option = Int(7, config=True, help="A *new* option [added] later_on.")
        not_configurable = Unicode("x", help="Not an option.")

    text = load_generator().render_config_reference(Extended)
    section = section_of(text, "brand_new_option")
    assert "Default: `7`" in section
    assert r"A \*new\* option \[added\] later\_on." in section
    assert "not_configurable" not in text
    for name in WidgetRelay.class_traits(config=True):
        assert f"`{name}`" in text


def test_written_page_is_left_alone_when_unchanged(tmp_path: Path) -> None:
    generator = load_generator()
    target = generator.write_config_reference(tmp_path)
    assert target == tmp_path / "reference" / "config.md"
    before = target.stat().st_mtime_ns
    assert generator.write_config_reference(tmp_path) == target
    assert target.stat().st_mtime_ns == before
    assert target.read_text(encoding="utf-8") == generator.render_config_reference()
