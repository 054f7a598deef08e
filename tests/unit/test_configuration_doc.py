"""docs/configuration.md documents every setting a service reads, as the code defines it now."""

from tools.configuration_doc import DOC, render


def test_the_configuration_doc_is_generated_from_the_current_settings():
    assert DOC.read_text() == render(), "run `make docs` (python -m tools.configuration_doc) and commit"


def test_every_setting_has_a_description():
    from tools.configuration_doc import SETTINGS

    for cls in SETTINGS.values():
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description"
