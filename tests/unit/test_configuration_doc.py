"""docs/configuration.md documents every setting a service reads."""

from pathlib import Path

from services.kernel.settings import KernelSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_in_the_configuration_table_with_its_default():
    text = DOC.read_text()
    for name, field in KernelSettings.model_fields.items():
        assert f"| `{name.upper()}` | `{field.default}` |" in text, f"{name.upper()} is not documented"
        assert field.description, f"{name} has no description"
